"""The opt-in ``lean`` wire profile (messaging/_lean.py): the body stays byte for byte what Go sends
(the only part a Go consumer reads, wire spec §3.5/§5) and the properties are Go's own (content type,
delivery mode) without the header table, at most 64 bytes; with publish interceptors only the table
goes; headers the caller asks for keep the full Go-identical form."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging._lean import (
    WIRE_PROFILES,
    check_wire_profile,
    lean_properties,
    without_header_table,
)
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.pipeline import Interceptor, Pipeline
from mmate_fast.messaging.publisher import Publisher
from tests.unit._impls import impl_params
from tests.unit.test_outgoing_vectors import _cases
from tests.vectors import VECTORS

_FIELDS = ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id", "reply_to",
           "expiration", "message_id", "timestamp", "type", "user_id", "app_id")


@dataclass
class LeanOrderPlaced(Event):
    order_id: str = ""


def _same_but_headers(full: Any, lean: Any) -> None:
    assert not lean.headers
    for name in _FIELDS:
        assert getattr(lean, name) == getattr(full, name), name


@pytest.mark.parametrize("frames", impl_params("frames"))
@pytest.mark.parametrize(("vector", "msg", "opts"), [c for c in _cases() if "headers" not in c.values[2]])
def test_lean_form_of_each_go_vector(frames: ModuleType, vector: str, msg: Any, opts: dict[str, Any]) -> None:
    """What a Go consumer reads (the body) is the captured Go body, and the properties are the ones
    the Go capture shows without the header table (flags 0xb000 minus headers)."""
    opts = {k: v for k, v in opts.items() if k != "route"}
    out = build(msg, source="mmate-go", envelope_reply_to=False, **opts)
    lean = lean_properties(opts.get("persistent", True), opts.get("ttl_ms"), opts.get("priority"))
    assert out.body == (VECTORS / f"{vector}.body.json").read_bytes()
    go = json.loads((VECTORS / f"{vector}.amqp.json").read_text())
    decoded, used = frames.decode_properties(lean)
    assert used == len(lean) <= 64  # short enough for the broker to copy (README "Wire compatibility", the lean profile)
    assert (lean[0] << 8 | lean[1]) == int(go["property_flags"], 16) & ~0x2000
    assert decoded.content_type == go["properties"]["content_type"]
    assert decoded.delivery_mode == go["properties"]["delivery_mode"]
    assert not decoded.headers and decoded.message_id is decoded.type is decoded.timestamp is None


@pytest.mark.parametrize("frames", impl_params("frames"))
def test_without_header_table_any_property_set(frames: ModuleType) -> None:
    """Every combination of the fields around the table (content_encoding, none, empty table)."""
    BP = frames.BasicProperties
    cases = [
        BP(headers={"a": "b"}),
        BP(headers={}),
        BP(content_type="text/plain", content_encoding="gzip", headers={"x": 1, "y": [1, "z"]},
           delivery_mode=2, priority=3, correlation_id="c", reply_to="r", expiration="5", message_id="m",
           timestamp=1_700_000_000, type="T", user_id="guest", app_id="app"),
        BP(content_encoding="identity", headers={"k": "v"}, message_id="only"),
        BP(content_type="application/json", delivery_mode=1),  # no table: unchanged
    ]
    for props in cases:
        enc = frames.encode_properties(props)
        lean = without_header_table(enc)
        decoded, used = frames.decode_properties(lean)
        assert used == len(lean)
        _same_but_headers(props, decoded)
        assert lean == frames.encode_properties(BP(**{n: getattr(props, n) for n in _FIELDS}))
    plain = frames.encode_properties(BP(content_type="application/json"))
    assert without_header_table(plain) is plain


def _pair(interceptors: Any = (), **options: Any) -> tuple[Any, Any]:
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    msgs = [LeanOrderPlaced(id="6f1c2a9e-0000-4000-8000-000000000001", timestamp=ts, order_id="o-1",
                            aggregate_id="o-1", sequence=3) for _ in range(2)]
    go = Publisher(None, pipeline=Pipeline(interceptors)).prepare(msgs[0], **options)
    lean = Publisher(None, wire_profile="lean", pipeline=Pipeline(interceptors)).prepare(msgs[1], **options)
    assert go[:2] == lean[:2]  # same route
    return go[2], lean[2]


def test_publisher_lean_sends_go_properties_without_the_table() -> None:
    frames = load("frames")
    go, lean = _pair(correlation_id="corr-1")
    assert lean.body == go.body
    assert lean.properties == lean_properties(True, None, None)
    decoded, _ = frames.decode_properties(lean.properties)
    assert (decoded.content_type, decoded.delivery_mode) == ("application/json", 2)
    assert decoded.headers is decoded.correlation_id is decoded.type is None
    assert lean.headers == {} and go.headers["x-message-kind"] == "event"
    env = json.loads(lean.body)  # our consumer reads these where the AMQP side has none
    assert env["correlationId"] == "corr-1" and env["id"] == "6f1c2a9e-0000-4000-8000-000000000001"
    h = env["headers"]
    assert h["x-message-kind"] == "event" and h["x-aggregate-id"] == "o-1" and h["x-sequence"] == "3"


def test_publisher_lean_ttl_and_priority_stay_real_properties() -> None:
    frames = load("frames")
    go, lean = _pair(ttl=1.5, priority=7, persistent=False)
    full, _ = frames.decode_properties(go.properties)
    decoded, _ = frames.decode_properties(lean.properties)
    assert (decoded.expiration, decoded.priority, decoded.delivery_mode) == ("1500", 7, 1)
    assert (decoded.expiration, decoded.priority, decoded.delivery_mode) == (
        full.expiration, full.priority, full.delivery_mode)


class _Noop(Interceptor):
    """A publish interceptor that changes nothing (signing, tracing, ... would read the properties)."""

    async def before_publish(self, ctx: Any) -> bool | None:
        return None


def test_publisher_lean_with_interceptors_keeps_the_net_properties() -> None:
    frames = load("frames")
    go, lean = _pair([_Noop()], correlation_id="corr-2")
    assert lean.body == go.body
    assert lean.properties == without_header_table(go.properties)
    full, _ = frames.decode_properties(go.properties)
    decoded, _ = frames.decode_properties(lean.properties)
    _same_but_headers(full, decoded)


@pytest.mark.parametrize("options", [{"headers": {"tenant": "t-1"}}, {"delay": 1.5}])
def test_publisher_lean_keeps_headers_the_caller_asked_for(options: dict[str, Any]) -> None:
    frames = load("frames")
    go, lean = _pair(**options)
    assert lean.properties == go.properties
    decoded, _ = frames.decode_properties(lean.properties)
    assert decoded.headers["x-message-type"] == "LeanOrderPlaced"


def test_unknown_wire_profile_is_refused() -> None:
    assert WIRE_PROFILES == ("go", "lean") and check_wire_profile("lean") == "lean"
    for bad in ("fast", "", None, "LEAN"):
        with pytest.raises(errors.InvalidArgumentError, match="wire_profile"):
            Publisher(None, wire_profile=bad)  # type: ignore[arg-type]
        with pytest.raises(errors.InvalidArgumentError, match="wire_profile"):
            Client("memory://", wire_profile=bad)  # type: ignore[arg-type]
    assert Client("memory://").wire_profile == "go"
