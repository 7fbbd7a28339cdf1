"""The one-call publish (wire.PublishPlan, compiled + twin) against the general path: the frames a
plan appends must equal, byte for byte, ``frames.append_publish`` of the body and properties the
general encoders make (``MessageTemplate.general`` = encode_envelope + encode_properties on merged
dicts, the per-message headers of ``outgoing._variable_headers``, the route of ``default_route``),
for every message kind, both wire profiles, random strings and ids, small frame sizes (split
bodies). And the Publisher: its one-call path sends what its general path (``prepare``) sends."""
from __future__ import annotations

import asyncio
import importlib
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmate_fast._ext import load
from mmate_fast.contracts import (
    Command,
    ErrorReply,
    Event,
    Message,
    MessageKind,
    Query,
    Reply,
    kind_of,
    message_type,
    to_payload,
)
from mmate_fast.contracts._convert import payload_writer
from mmate_fast.messaging import outgoing
from mmate_fast.messaging._lean import lean_properties
from mmate_fast.messaging.pipeline import Interceptor
from mmate_fast.messaging.publisher import Publisher, default_route
from tests.unit._impls import impl_params

_frames = load("frames")
_penv = importlib.import_module("mmate_fast._py.envelope")
_pfr = importlib.import_module("mmate_fast._py.frames")


@dataclass
class PlanCommand(Command):
    order_id: str = ""
    amount: float = 0.0
    items: list[str] = field(default_factory=list)


@dataclass
class PlanEvent(Event):
    order_id: str = ""
    amount: float = 0.0
    note: str = ""


@dataclass
class PlanQuery(Query):
    order_id: str = ""


@dataclass
class PlanReply(Reply):
    status: str = ""


@dataclass
class PlanMessage(Message):
    text: str = ""


SPECIALS = list("<>&\u2028\u2029\x00\x01\x1f\x7f\"\\/é€😀")
CHARS = st.one_of(st.sampled_from(SPECIALS), st.characters(blacklist_categories=("Cs",)))
TEXT = st.text(CHARS, max_size=30)
OPT = st.one_of(st.none(), st.just(""), TEXT)


def _modules(wire: ModuleType) -> tuple[ModuleType, ModuleType]:
    if wire.__name__.startswith("mmate_fast._cy"):
        return importlib.import_module("mmate_fast._cy.envelope"), importlib.import_module("mmate_fast._cy.frames")
    return _penv, _pfr


def _route_parts(kind: MessageKind, tname: str) -> tuple[str, str, str] | None:
    if kind is MessageKind.EVENT:
        return "aggregate_id", "evt.", f".{tname}"
    if kind is MessageKind.COMMAND:
        return "target_service", "cmd.", f".{tname}"
    return None


def _plan(wire: ModuleType, msg: Any, *, persistent: bool, lean: bool, exchange: str | None = None,
          routing_key: str | None = None, mandatory: bool = False) -> tuple[Any, Any]:
    kind = kind_of(msg)
    tname = message_type(msg)
    static, typed = outgoing._static_headers(tname, kind, outgoing.SOURCE, None, None, persistent)
    tpl = wire.MessageTemplate(static, typed, type_name=tname, delivery_mode=2 if persistent else 1)
    ex, rk = default_route(msg, kind, tname)
    route = _route_parts(kind, tname) if routing_key is None else None
    attr, pre, suf = route if route is not None else (None, "", "")
    plan = wire.PublishPlan(
        tpl, outgoing._KIND_CODE[kind], exchange if exchange is not None else ex,
        routing_key if routing_key is not None else (None if route else rk), route_attr=attr,
        route_prefix=pre, route_suffix=suf, mandatory=mandatory, writer=payload_writer(type(msg)),
        to_payload=to_payload, lean_properties=lean_properties(persistent, None, None) if lean else None)
    return plan, tpl


def _reference(wire: ModuleType, tpl: Any, msg: Any, msg_id: str, unix: int, *, persistent: bool, lean: bool,
               channel: int, frame_max: int, exchange: str | None = None, routing_key: str | None = None,
               mandatory: bool = False) -> bytes:
    env, fr = _modules(wire)
    kind = kind_of(msg)
    ts = env.utc_timestamp(unix)
    corr = msg.correlation_id or None
    address = (msg.reply_to or None) if kind in (MessageKind.COMMAND, MessageKind.QUERY) else None
    var = outgoing._variable_headers(msg, kind, msg_id, ts, corr, address)
    body, props = tpl.general(msg_id, ts, unix, corr, address, True, var, to_payload(msg))
    if lean:
        props = bytes(lean_properties(persistent, None, None))
    ex, rk = default_route(msg, kind, message_type(msg))
    out = bytearray()
    fr.append_publish(out, channel, exchange if exchange is not None else ex,
                      routing_key if routing_key is not None else rk, body, props, mandatory, frame_max)
    return bytes(out)


def _write_same_second(plan: Any, msg: Any, channel: int, frame_max: int) -> tuple[bytes, str, int]:
    """The plan's frames and id, and the second they were written in (retried across a tick)."""
    while True:
        t0 = int(time.time())
        out = bytearray(b"xx")  # appended to, never overwritten
        msg_id = plan.write(out, channel, frame_max, msg)
        if int(time.time()) == t0:
            assert out[:2] == b"xx"
            return bytes(out[2:]), msg_id, t0


def _messages(ids: str, text: str, corr: str | None, addr: str, agg: str, seq: int) -> list[Any]:
    return [
        PlanCommand(id=ids, correlation_id=corr, order_id=text, amount=1.5, items=[text, "x"],
                    target_service=agg or "svc", reply_to=addr),
        PlanEvent(id=ids, correlation_id=corr, order_id=text, amount=10.42, note=text, aggregate_id=agg,
                  sequence=seq, source=addr),
        PlanQuery(id=ids, correlation_id=corr, order_id=text, reply_to=addr),
        PlanReply(id=ids, correlation_id=corr, status=text, success=bool(seq % 2)),
        ErrorReply(id=ids, correlation_id=corr, error_code=text, error_message=agg),
        PlanMessage(id=ids, correlation_id=corr, text=text),
    ]


@pytest.mark.parametrize("wire", impl_params("wire"))
@settings(max_examples=150, deadline=None)
@given(ids=TEXT.filter(bool), text=TEXT, corr=OPT, addr=TEXT, agg=TEXT, seq=st.integers(-(2**70), 2**70),
       persistent=st.booleans(), lean=st.booleans(), channel=st.integers(1, 0xFFFF),
       frame_max=st.sampled_from([4096, 131072]), mandatory=st.booleans())
def test_plan_frames_equal_general_path(wire: ModuleType, ids: str, text: str, corr: str | None, addr: str,
                                        agg: str, seq: int, persistent: bool, lean: bool, channel: int,
                                        frame_max: int, mandatory: bool) -> None:
    for msg in _messages(ids, text, corr, addr, agg, seq):
        plan, tpl = _plan(wire, msg, persistent=persistent, lean=lean, mandatory=mandatory)
        got, msg_id, unix = _write_same_second(plan, msg, channel, frame_max)
        if len(ids.encode()) > 255 or len((corr or "").encode()) > 255:
            assert msg_id is None and got == b""  # the general path raises InvalidArgumentError
            continue
        assert msg_id == ids
        assert got == _reference(wire, tpl, msg, ids, unix, persistent=persistent, lean=lean, channel=channel,
                                 frame_max=frame_max, mandatory=mandatory), type(msg).__name__
        r = plan.encode(msg)
        assert r is not None and r[0] == ids


@pytest.mark.parametrize("wire", impl_params("wire"))
def test_every_special_character_at_every_word_offset(wire: ModuleType) -> None:
    """The string writer copies runs of 8 plain bytes whole: each character that needs an escape
    (or a look: any non-ASCII) at each offset of 8-byte words, alone and next to another, in
    strings of 0-19 bytes, still writes what the general path writes."""
    specials = [*SPECIALS, "\u2027", "\u202a", "\u00e2", "\x7f", " ", "~", "="]
    texts = ["a" * n for n in range(20)]
    for c in specials:
        for n in (8, 9, 15, 16, 17, 19):
            for at in range(n):
                texts.append("b" * at + c + "c" * (n - at - 1))
                texts.append("d" * at + c + c + "e" * max(0, n - at - 2))
    plan, tpl = _plan(wire, PlanMessage(text=""), persistent=True, lean=False)
    for text in texts:
        msg = PlanMessage(id="id-" + text, text=text, correlation_id=text or None)
        got, msg_id, unix = _write_same_second(plan, msg, 1, 131072)
        assert msg_id == "id-" + text
        ref = _reference(wire, tpl, msg, "id-" + text, unix, persistent=True, lean=False, channel=1,
                         frame_max=131072)
        assert got == ref, repr(text)


@pytest.mark.parametrize("wire", impl_params("wire"))
@settings(max_examples=100, deadline=None)
@given(ids=TEXT.filter(bool), text=TEXT, corr=OPT, addr=TEXT, call_corr=OPT, call_rt=OPT,
       call_rk=st.one_of(st.none(), TEXT), persistent=st.booleans(), lean=st.booleans(),
       frame_max=st.sampled_from([4096, 131072]))
def test_per_call_values_equal_the_general_paths_options(wire: ModuleType, ids: str, text: str, corr: str | None,
                                                         addr: str, call_corr: str | None, call_rt: str | None,
                                                         call_rk: str | None, persistent: bool, lean: bool,
                                                         frame_max: int) -> None:
    """``write(..., correlation_id, reply_to, routing_key)`` (the request and reply hops) writes what
    ``build(msg, correlation_id=, reply_to=)`` + ``append_publish`` to ``routing_key`` write: the
    per-call values win when not empty, the message's otherwise (reply address: commands/queries)."""
    env, fr = _modules(wire)
    for msg in _messages(ids, text, corr, addr, "agg", 3):
        plan, tpl = _plan(wire, msg, persistent=persistent, lean=lean)
        kind = kind_of(msg)
        while True:
            t0 = int(time.time())
            out = bytearray(b"xx")
            msg_id = plan.write(out, 9, frame_max, msg, call_corr, call_rt, call_rk)
            if int(time.time()) == t0:
                break
        got = bytes(out[2:])
        eff_corr = call_corr or msg.correlation_id or None
        eff_rt = call_rt or ((msg.reply_to or None) if kind in (MessageKind.COMMAND, MessageKind.QUERY) else None)
        ex, rk = default_route(msg, kind, message_type(msg))
        rk = call_rk if call_rk is not None else rk
        if any(len((v or "").encode()) > 255 for v in (ids, eff_corr, eff_rt, rk)):
            assert msg_id is None and got == b""  # the general path raises InvalidArgumentError
            assert plan.encode(msg, call_corr, call_rt, call_rk) is None
            continue
        assert msg_id == ids
        ts = env.utc_timestamp(t0)
        var = outgoing._variable_headers(msg, kind, ids, ts, eff_corr, eff_rt)
        body, props = tpl.general(ids, ts, t0, eff_corr, eff_rt, True, var, to_payload(msg))
        if lean:
            props = bytes(lean_properties(persistent, None, None))
        ref = bytearray()
        fr.append_publish(ref, 9, ex, rk, body, props, False, frame_max)
        assert got == bytes(ref), type(msg).__name__
        r = plan.encode(msg, call_corr, call_rt, call_rk)
        assert r is not None and r[0] == ids and r[1] == rk


@pytest.mark.parametrize("wire", impl_params("wire"))
def test_per_call_values_that_need_the_general_path(wire: ModuleType) -> None:
    msg = PlanQuery(order_id="o-1")
    plan, _ = _plan(wire, msg, persistent=True, lean=False)
    for args in ((7, None, None), (None, 7, None), (None, None, 7), ("c" * 256, None, None),
                 (None, "r" * 256, None), (None, None, "k" * 256), (None, "\ud800", None)):
        out = bytearray(b"keep")
        assert plan.write(out, 1, 131072, msg, *args) is None, args
        assert out == b"keep"
        assert plan.encode(msg, *args) is None


@pytest.mark.parametrize("wire", impl_params("wire"))
def test_big_body_is_split_and_new_ids_are_made(wire: ModuleType) -> None:
    msg = PlanEvent(order_id="o" * 20000, aggregate_id="a-1", sequence=3)
    msg.id = ""  # no id: the plan makes one, as the general path does
    plan, tpl = _plan(wire, msg, persistent=True, lean=False, exchange="", routing_key="some-queue")
    got, msg_id, unix = _write_same_second(plan, msg, 7, 4096)
    assert isinstance(msg_id, str) and len(msg_id) == 36
    assert got == _reference(wire, tpl, msg, msg_id, unix, persistent=True, lean=False, channel=7,
                             frame_max=4096, exchange="", routing_key="some-queue")
    assert got.count(b"\x03\x00\x07") >= 5  # body frames of at most 4088 bytes


@pytest.mark.parametrize("wire", impl_params("wire"))
@pytest.mark.parametrize("change", [
    {"timestamp": __import__("datetime").datetime(2025, 1, 1)},  # a set timestamp: general path
    {"id": 5},  # not a str
    {"correlation_id": 7},
    {"aggregate_id": 42},
    {"note": "\ud800"},  # not UTF-8
    {"aggregate_id": "a" * 300},  # routing key over 255 bytes
    {"id": "i" * 256},
])
def test_what_the_general_path_must_handle_writes_nothing(wire: ModuleType, change: dict[str, Any]) -> None:
    msg = PlanEvent(order_id="o-1", aggregate_id="a-1")
    for k, v in change.items():
        setattr(msg, k, v)
    plan, _ = _plan(wire, msg, persistent=True, lean=False)
    out = bytearray(b"keep")
    assert plan.write(out, 1, 131072, msg) is None
    assert out == b"keep"
    assert plan.encode(msg) is None


@pytest.mark.parametrize("wire", impl_params("wire"))
def test_bad_plan_options(wire: ModuleType) -> None:
    msg = PlanEvent()
    _, tpl = _plan(wire, msg, persistent=True, lean=False)
    with pytest.raises(ValueError):
        wire.PublishPlan(tpl, 2, "e" * 256, "rk")
    with pytest.raises(ValueError):
        wire.PublishPlan(tpl, 2, "ex", "r" * 256)
    with pytest.raises(ValueError):
        wire.PublishPlan(tpl, 9, "ex", "rk")
    with pytest.raises(TypeError):
        wire.PublishPlan(tpl, 2, "ex", None)  # neither a routing key nor a route attribute
    plan = wire.PublishPlan(tpl, 2, "ex", "rk", to_payload=to_payload)
    with pytest.raises(ValueError):
        plan.write(bytearray(), 1, 100, msg)  # frame_max below the AMQP minimum
    with pytest.raises(ValueError):
        plan.write(bytearray(), 70000, 131072, msg)


# --------------------------------------------------------------------------- the Publisher
class _Target:
    """A channel-like target: records publish_nowait calls; optionally its own publish sink."""

    def __init__(self, sink: bool, confirms: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.out = bytearray()
        self.sink = sink
        self.confirms = confirms

    def publish_sink(self) -> Any:
        return self if self.sink else None

    open = True  # the PublishSink interface

    def write(self, plan: Any, msg: Any, correlation_id: str | None = None, reply_to: str | None = None,
              routing_key: str | None = None) -> Any:
        return plan.write(self.out, 1, 131072, msg, correlation_id, reply_to, routing_key)

    def publish_nowait(self, body: bytes, exchange: str, routing_key: str, properties: bytes, *,
                       mandatory: bool = False, confirm_value: Any = True) -> Any:
        _frames.append_publish(self.out, 1, exchange, routing_key, body, properties, mandatory, 131072)
        self.calls.append((exchange, routing_key))
        if self.confirms:
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(confirm_value)
            return fut
        return None

    async def publish(self, body: bytes, exchange: str, routing_key: str, properties: bytes, *,
                      mandatory: bool = False, timeout: float | None = None) -> None:
        self.publish_nowait(body, exchange, routing_key, properties, mandatory=mandatory)

    async def drain(self, timeout: float | None = None) -> None:
        return None


def _general_frames(pub: Publisher, msg: Any, opts: dict[str, Any], mandatory: bool = False) -> bytes:
    ex, rk, out = pub.prepare(msg, **opts)
    buf = bytearray()
    _frames.append_publish(buf, 1, ex, rk, out.body, out.properties, mandatory, 131072)
    return bytes(buf)


@pytest.mark.parametrize("profile", ["go", "lean"])
@pytest.mark.parametrize(("sink", "confirms"), [(True, False), (False, False), (False, True)])
@pytest.mark.parametrize("opts", [{}, {"persistent": False}, {"exchange": "", "routing_key": "q-1"}])
def test_publisher_fast_path_sends_what_the_general_path_sends(profile: str, sink: bool, confirms: bool,
                                                                 opts: dict[str, Any]) -> None:
    async def main() -> None:
        for msg in _messages("id-1", "t<>&\u2028é", "c-1", "reply.q", "agg-1", 7):
            for _ in range(3):  # the same second for both
                t0 = int(time.time())
                target = _Target(sink, confirms)
                pub = Publisher(target, confirms=confirms, wire_profile=profile)
                pub._sink = target.publish_sink()
                kind = kind_of(msg)
                mid = await pub.publish(msg, kind=kind, **opts)
                ref = _general_frames(pub, msg, {"kind": kind, **opts})
                if int(time.time()) == t0:
                    break
            assert mid == "id-1"
            assert pub._plans, "the one-call path was not taken"
            assert bytes(target.out) == ref, (type(msg).__name__, profile)
            assert (target.calls == []) == sink
            assert pub.published == 1

    asyncio.run(main())


class _Count(Interceptor):
    def __init__(self) -> None:
        self.n = 0

    async def before_publish(self, ctx: Any) -> None:
        self.n += 1


def test_publisher_general_path_when_asked_for_more() -> None:
    """Per-message options, an interceptor, an observer or a timeout take the general path."""

    async def main() -> None:
        target = _Target(sink=True)
        pub = Publisher(target)
        pub._sink = target
        msg = PlanEvent(order_id="o", aggregate_id="a")
        await pub.publish(msg, headers={"x": "1"})
        await pub.publish(msg, ttl=5)
        await pub.publish(msg, timeout=3)
        assert len(target.calls) == 3 and not pub._plans
        ic = _Count()
        pub.pipeline.add(ic)
        await pub.publish(msg)
        assert ic.n == 1 and len(target.calls) == 4 and not pub._plans
        await pub.publish(msg, headers={"x": "1"})
        assert pub.published == 5

    asyncio.run(main())


def test_publisher_refused_message_raises_where_awaited() -> None:
    async def main() -> None:
        target = _Target(sink=True)
        pub = Publisher(target)
        pub._sink = target
        from mmate_fast import errors
        with pytest.raises(errors.InvalidArgumentError):
            await pub.publish(PlanEvent(aggregate_id="a" * 300))
        assert target.out == b""

    asyncio.run(main())


class _Conn:
    """The Connection attributes a PublishSink reads."""

    def __init__(self) -> None:
        self._wbuf = bytearray()
        self._flush_pending = False
        self.flushes = 0

    def _schedule_flush(self) -> None:
        self._flush_pending = True
        self.flushes += 1


@pytest.mark.parametrize("wire", impl_params("wire"))
def test_sink_writes_into_the_connection_buffer_until_closed(wire: ModuleType) -> None:
    conn = _Conn()
    sink = wire.PublishSink(conn, 3, 131072)
    msg = PlanEvent(order_id="o-1", aggregate_id="a-1")
    plan, _ = _plan(wire, msg, persistent=True, lean=False)
    first = conn._wbuf
    assert sink.write(plan, msg) == msg.id
    assert sink.write(plan, PlanEvent(aggregate_id="a-2")) is not None
    assert conn.flushes == 1 and first[:3] == b"\x01\x00\x03"  # one flush per loop turn, channel 3
    conn._wbuf, conn._flush_pending = bytearray(), False  # a flush replaces the buffer
    assert sink.write(plan, msg) == msg.id and conn._wbuf and conn.flushes == 2
    ts = PlanEvent(aggregate_id="a")
    ts.timestamp = __import__("datetime").datetime(2025, 1, 1)
    n = len(conn._wbuf)
    assert sink.write(plan, ts) is None and len(conn._wbuf) == n  # the general path's message
    sink.open = False
    assert sink.write(plan, msg) is None and len(conn._wbuf) == n
    with pytest.raises(ValueError):
        wire.PublishSink(conn, 1, 100)


@pytest.mark.parametrize(("sink", "confirms"), [(True, False), (False, False), (False, True)])
def test_publish_nowait_fast_path_sends_what_the_general_path_sends(sink: bool, confirms: bool) -> None:
    async def main() -> None:
        for msg in _messages("id-2", "x", None, "r.q", "agg-2", 3):
            for _ in range(3):
                t0 = int(time.time())
                target = _Target(sink, confirms)
                pub = Publisher(target, confirms=confirms)
                pub._sink = target.publish_sink()
                fut = pub.publish_nowait(msg, exchange="", routing_key="q-2", persistent=False)
                ref = _general_frames(pub, msg, {"exchange": "", "routing_key": "q-2", "persistent": False})
                if int(time.time()) == t0:
                    break
            assert pub._plans and bytes(target.out) == ref, type(msg).__name__
            assert (fut is None) == (not confirms) and pub.published == 1

    asyncio.run(main())


@pytest.mark.parametrize("profile", ["go", "lean"])
@pytest.mark.parametrize(("sink", "confirms"), [(True, False), (False, False), (False, True)])
def test_publish_nowait_reply_hop_sends_what_the_general_path_sends(profile: str, sink: bool,
                                                                    confirms: bool) -> None:
    """The responder's reply (``exchange=""``, the requester's queue as routing key, the request's
    correlation id) and a request's reply address go the one-call path, with one plan per class for
    every reply queue."""

    async def main() -> None:
        cases = [(PlanReply(status="ok", success=True), {"kind": MessageKind.REPLY, "correlation_id": "c-9"}),
                 (ErrorReply(error_code="E", error_message="m"), {"correlation_id": "c-9"}),
                 (PlanQuery(order_id="o"), {"kind": MessageKind.QUERY, "correlation_id": "c-8",
                                            "reply_to": "bridge.reply.0000aaaa"}),
                 (PlanMessage(text="t"), {"reply_to": "r.q", "persistent": False})]
        for msg, opts in cases:
            for queue in ("bridge.reply.0123abcd", "bridge.reply.4567cdef", "q\u00e9"):
                for _ in range(3):
                    t0 = int(time.time())
                    target = _Target(sink, confirms)
                    pub = Publisher(target, confirms=confirms, wire_profile=profile)
                    all_opts = {"exchange": "", "routing_key": queue, **opts}
                    fut = pub.publish_nowait(msg, **all_opts)
                    pub.publish_nowait(msg, **{**all_opts, "routing_key": "other.queue"})
                    ref = _general_frames(pub, msg, all_opts) + _general_frames(
                        pub, msg, {**all_opts, "routing_key": "other.queue"})
                    if int(time.time()) == t0:
                        break
                assert len(pub._plans) == 1, "one plan for every routing key"
                assert bytes(target.out) == ref, (type(msg).__name__, queue, profile)
                assert (target.calls == []) == sink
                assert (fut is None) == (not confirms) and pub.published == 2

    asyncio.run(main())


@pytest.mark.parametrize("profile", ["go", "lean"])
@pytest.mark.parametrize(("sink", "confirms"), [(True, False), (False, False), (False, True)])
def test_reply_nowait_sends_what_publish_nowait_sends(profile: str, sink: bool, confirms: bool) -> None:
    async def main() -> None:
        for reply in (PlanReply(id="r-1", status="ok", success=True), PlanReply(id="r-2", success=False),
                      ErrorReply(id="r-3", error_code="E", error_message="m")):
            for persistent in (True, False):
                for _ in range(3):
                    t0 = int(time.time())
                    target = _Target(sink, confirms)
                    pub = Publisher(target, confirms=confirms, wire_profile=profile)
                    fut = pub.reply_nowait(reply, "bridge.reply.0123abcd", "c-7", persistent)
                    ref = _general_frames(pub, reply, {"exchange": "", "routing_key": "bridge.reply.0123abcd",
                                                       "correlation_id": "c-7", "kind": MessageKind.REPLY,
                                                       "persistent": persistent})
                    if int(time.time()) == t0:
                        break
                assert bytes(target.out) == ref, (type(reply).__name__, persistent)
                assert (fut is None) == (not confirms) and pub.published == 1
                assert (target.calls == []) == sink

    asyncio.run(main())


def test_publish_nowait_reply_hop_general_path_errors() -> None:
    """What the broker would refuse still raises the general path's named error."""
    from mmate_fast import errors

    async def main() -> None:
        target = _Target(sink=True)
        pub = Publisher(target)
        with pytest.raises(errors.InvalidArgumentError):
            pub.publish_nowait(PlanReply(success=True), exchange="", routing_key="q" * 256, correlation_id="c")
        with pytest.raises(errors.InvalidArgumentError):
            pub.publish_nowait(PlanReply(success=True), exchange="", routing_key="q", correlation_id="c" * 256)
        with pytest.raises(errors.InvalidArgumentError):
            pub.reply_nowait(PlanReply(success=True), "q" * 256, "c")
        assert target.out == b"" and pub.published == 0

    asyncio.run(main())


@pytest.mark.parametrize("confirms", [False, True])
def test_publish_batch_sends_what_the_general_path_sends(confirms: bool) -> None:
    async def main() -> None:
        for _ in range(3):
            t0 = int(time.time())
            msgs = _messages("id-3", "y", "c", "r.q", "agg-3", 4) * 3
            msgs.append(PlanEvent(order_id="bad", aggregate_id="a", timestamp=None, correlation_id=None))
            msgs[-1].timestamp = __import__("datetime").datetime(2025, 1, 1)  # the general path's message
            target = _Target(sink=False, confirms=confirms)
            pub = Publisher(target, confirms=confirms)
            ids = await pub.publish_batch(msgs, window=8, persistent=False)
            ref = b"".join(_general_frames(pub, m, {"persistent": False}) for m in msgs)
            if int(time.time()) == t0:
                break
        assert ids == [m.id for m in msgs] and pub.published == len(msgs)
        assert pub._plans and bytes(target.out) == ref

    asyncio.run(main())
