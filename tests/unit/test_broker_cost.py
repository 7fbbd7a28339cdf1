"""benchmarks/broker_cost.py measures what it says: each row's frames carry the properties its
description names (Go's flags and field types, the lean 20 bytes, the 63/65-byte pair around the
broker's 64-byte step), and the main broker is found by its 5672 listener. No broker needed."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from mmate_fast._ext import load

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
_frames = load("frames")


@pytest.fixture(scope="module")
def bc() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("broker_cost")
    finally:
        sys.path.remove(str(BENCH))


def _props(bc: ModuleType, row: str) -> tuple[bytes, object]:
    shape = bc.ROWS[row][0]
    props = bc._properties(shape, bc._body(shape))
    decoded, used = _frames.decode_properties(props)
    assert used == len(props)
    return props, decoded


def test_rows_carry_the_properties_they_name(bc: ModuleType) -> None:
    plain, p = _props(bc, "plain")
    assert len(plain) == 20 and (p.content_type, p.delivery_mode, p.headers) == ("application/json", 1, None)
    lean, p = _props(bc, "mmate_lean")
    assert len(lean) == 20 and p.delivery_mode == 2 and p.headers is None  # persistent, Go's two fields
    go, p = _props(bc, "mmate_go")
    assert (go[0] << 8 | go[1]) == 0xB000 and len(p.headers) == 14  # content_type, headers, delivery_mode
    assert b"\x0ddelivery-modeB\x02" in go and b"\x08priorityB\x00" in go  # Go's uint8 field type kept
    _, p = _props(bc, "mmate_ours")
    assert len(p.headers) == 14 and p.message_id and p.type == "OrderCreatedEvent" and p.timestamp
    net, p = _props(bc, "net_props")
    assert p.headers is None and p.message_id and len(net) > 64
    assert [len(_props(bc, r)[0]) for r in ("props_63", "props_65")] == [63, 65]
    assert bc.ROWS["mmate_ours"][0].persistent and bc.ROWS["mmate_ours"][0].durable_queue
    for client, raw in bc.CLIENT_RAW.items():  # vs_raw compares the same wire
        c, r = bc.ROWS[client][0], bc.ROWS[raw][0]
        assert (c.exchange, c.props, c.body, c.persistent, c.durable_queue, c.binding) == (
            r.exchange, r.props, r.body, r.persistent, r.durable_queue, r.binding)


def test_frames_are_one_publish_each(bc: ModuleType) -> None:
    body = bc._body(bc.ROWS["body692"][0])
    assert len(body) == 692
    frames = bc.publish_frames("ex", "rk", body, b"\x90\x00\x10application/json\x01", 3)
    assert frames.count(b"\xce") >= 3 and frames[1:3] == b"\x00\x03"  # method frame on channel 3


def test_main_node_pid_is_found_by_its_listener(bc: ModuleType) -> None:
    common = sys.modules["_common"]
    pid = common.main_beam_pid()
    if not pid:
        pytest.skip("no RabbitMQ beam.smp visible in /proc on this machine")
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "beam.smp"
