"""Micro-benchmarks: compiled codec vs pure-Python twin vs pamqp (run with --benchmark-only)."""
from __future__ import annotations

import importlib
import struct
from typing import Any

import pytest
from pamqp import body as pbody
from pamqp import commands as pc
from pamqp import encode as penc
from pamqp import frame as pframe
from pamqp import header as pheader

IMPLS = {"cy": importlib.import_module("mmate_fast._cy.frames"), "py": importlib.import_module("mmate_fast._py.frames")}
POOLS = {"cy": importlib.import_module("mmate_fast._cy.pool"), "py": importlib.import_module("mmate_fast._py.pool")}
BODY = b"x" * 300
HEADERS = {"x-message-type": "OrderCreated", "x-message-id": "0b5e0000-0000-4000-8000-000000000001",
           "attempt": 2, "source": "mmate", "x-version": "1.0"}
PROPS = pc.Basic.Properties(content_type="application/json", delivery_mode=2, headers=HEADERS)
ONE = (pframe.marshal(pc.Basic.Deliver("ctag", 1, False, "ex", "rk"), 1)
       + pframe.marshal(pheader.ContentHeader(0, len(BODY), PROPS), 1) + pframe.marshal(pbody.ContentBody(BODY), 1))
CHUNK = ONE * 1000


@pytest.mark.parametrize("impl", ["cy", "py", "pamqp"])
def test_append_publish(benchmark: Any, impl: str) -> None:
    if impl == "pamqp":
        def run() -> None:
            out = bytearray()
            out += pframe.marshal(pc.Basic.Publish(exchange="ex", routing_key="rk"), 1)
            out += pframe.marshal(pheader.ContentHeader(0, len(BODY), PROPS), 1)
            out += pframe.marshal(pbody.ContentBody(BODY), 1)
        benchmark(run)
        return
    F = IMPLS[impl]
    enc = F.encode_properties(F.BasicProperties(content_type="application/json", delivery_mode=2, headers=HEADERS))
    out = bytearray()
    ap = F.append_publish

    def run_ours() -> None:
        del out[:]
        ap(out, 1, "ex", "rk", BODY, enc)
    benchmark(run_ours)


@pytest.mark.parametrize("impl", ["cy", "py", "pamqp"])
def test_feed_1000_deliveries(benchmark: Any, impl: str) -> None:
    if impl == "pamqp":
        def run() -> int:
            pos, n, data = 0, 0, CHUNK
            while pos < len(data):
                used, _, _ = pframe.unmarshal(data[pos:])
                pos += used
                n += 1
            return n
        assert benchmark(run) == 3000
        return
    F = IMPLS[impl]

    def run_ours() -> int:
        return len(F.FrameReader().feed(CHUNK))
    assert benchmark(run_ours) == 1000


def _poison_chunk() -> bytes:
    """1000 deliveries whose header table nests deeper than 64 (decoded as far as it goes, then kept
    raw) and whose routing key is not UTF-8."""
    deep = b"\x00\x00\x00\x00"
    for _ in range(70):
        deep = struct.pack(">I", len(deep) + 3) + b"\x01dF" + deep
    props = b"\x20\x00" + deep
    method = b"\x00\x3c\x00\x3c\x04ctag" + struct.pack(">QB", 1, 0) + b"\x02ex\x04rk\xff\xfe"
    header = b"\x00\x3c\x00\x00" + struct.pack(">Q", len(BODY)) + props

    def frame(ftype: int, payload: bytes) -> bytes:
        return struct.pack(">BHI", ftype, 1, len(payload)) + payload + b"\xce"
    return (frame(1, method) + frame(2, header) + frame(3, BODY)) * 1000


POISON_CHUNK = _poison_chunk()


@pytest.mark.parametrize("impl", ["cy", "py"])
def test_feed_1000_poison_deliveries(benchmark: Any, impl: str) -> None:
    F = IMPLS[impl]

    def run() -> int:
        items = F.FrameReader().feed(POISON_CHUNK)
        assert items[-1].undecodable
        return len(items)
    assert benchmark(run) == 1000


@pytest.mark.parametrize("impl", ["cy", "py", "pamqp"])
def test_encode_table(benchmark: Any, impl: str) -> None:
    if impl == "pamqp":
        benchmark(penc.field_table, HEADERS)
    else:
        benchmark(IMPLS[impl].encode_table, HEADERS)


@pytest.mark.parametrize("impl", ["cy", "py"])
def test_confirm_add_ack(benchmark: Any, impl: str) -> None:
    t = POOLS[impl].ConfirmTracker(lambda tag: RuntimeError(tag))

    def run() -> None:
        t.ack(t.add(None), False)
    benchmark(run)
