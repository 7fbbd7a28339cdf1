"""The bridge's reply step (``replystep.ReplyStep``, compiled and twin): every reply ends exactly as
``Bridge._on_reply`` ends it (the request's outcome, the bridge's counters, what stays pending), and
the AMQP channel hands a no-ack consumer's deliveries to its ``no_ack_hook`` inside the frame
reader's ``feed``, settling each tag."""
from __future__ import annotations

import asyncio
import copy
import struct
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import orjson
import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.amqp.channel import Channel, _Consumer
from mmate_fast.bridge import Bridge, error_of
from mmate_fast.contracts import ErrorReply, GenericMessage, MessageKind, Query, Reply, TypeRegistry
from mmate_fast.contracts._plan import _PLANS, plan_for
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.pipeline import Interceptor
from mmate_fast.messaging.publisher import Publisher
from tests.unit._impls import impl_params

_decode_envelope = load("envelope").decode_envelope
_frames = load("frames")


@pytest.fixture(params=impl_params("replystep"))
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@dataclass
class RsGetOrder(Query):
    order_id: str = ""


@dataclass
class RsOrderReply(Reply):
    order_id: str = ""
    amount: float = 0.0
    error_code: str = ""
    error_message: str = ""


@dataclass
class RsStrictReply(Reply):
    count: int = 0


class _Delivery:
    """What the reply callback reads of a delivery."""

    def __init__(self, body: bytes, properties: Any = None, undecodable: Any = None, tag: int = 1) -> None:
        self.body = body
        self.properties = properties
        self.undecodable = undecodable
        self.delivery_tag = tag


class _Props:
    def __init__(self, correlation_id: str | None = None) -> None:
        self.correlation_id = correlation_id
        self.headers: dict[str, Any] = {}


class _NoTarget:
    def publish_nowait(self, *args: Any, **kwargs: Any) -> None:
        return None


def _registry() -> TypeRegistry:
    reg = TypeRegistry()
    for cls in (RsGetOrder, RsOrderReply, RsStrictReply):
        reg.register(cls)
    return reg


def _bridge(registry: TypeRegistry) -> Bridge:
    return Bridge(None, Publisher(_NoTarget(), confirms=False), registry=registry)


def _step(impl: ModuleType, bridge: Bridge) -> Any:
    return impl.ReplyStep(bridge, bridge._pending, bridge.registry._by_name, _decode_envelope, _PLANS, plan_for,
                          error_of, (ErrorReply, GenericMessage))


def _body(reply: Any, corr: str | None) -> bytes:
    return build(reply, correlation_id=corr, persistent=False).body


def _raw(corr: str | None, type_name: str, payload: Any) -> bytes:
    env: dict[str, Any] = {"id": str(uuid.uuid4()), "type": type_name, "timestamp": "2026-11-30T21:00:00Z",
                           "payload": payload, "headers": {}}
    if corr is not None:
        env["correlationId"] = corr
    return orjson.dumps(env)


CORR = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


def _cases() -> list[tuple[str, Any, bool, bool]]:
    """(name, delivery, the request waits, its future is already done)."""
    ok = _body(RsOrderReply(order_id="A-1", amount=2.5), CORR)
    return [
        ("typed", _Delivery(ok), True, False),
        ("typed-late", _Delivery(ok), False, False),
        ("typed-done", _Delivery(ok), True, True),
        ("error-reply", _Delivery(_body(ErrorReply(error_code="E1", error_message="nope", success=False), CORR)),
         True, False),
        ("error-reply-success", _Delivery(_body(ErrorReply(error_code="E1", error_message="x", success=True), CORR)),
         True, False),
        ("typed-failure", _Delivery(_body(RsOrderReply(order_id="x", success=False, error_code="NOPE",
                                                       error_message="gone"), CORR)), True, False),
        ("typed-failure-no-fields", _Delivery(_body(RsOrderReply(order_id="x", success=False), CORR)), True, False),
        ("typed-failure-payload-fields", _Delivery(_raw(CORR, "RsStrictReply", {
            "count": 0, "success": False, "errorCode": "C", "errorMessage": "m"})), True, False),
        ("generic", _Delivery(_raw(CORR, "SomeoneElsesReply", {"x": 1})), True, False),
        ("generic-error", _Delivery(_raw(CORR, "RsGetOrderError", {"success": False, "errorCode": "E",
                                                                   "errorMessage": "m"})), True, False),
        ("payload-mismatch", _Delivery(_raw(CORR, "RsStrictReply", {"count": "many"})), True, False),
        ("payload-not-object", _Delivery(_raw(CORR, "RsStrictReply", [1, 2])), True, False),
        ("payload-null", _Delivery(_raw(CORR, "RsStrictReply", None)), True, False),
        ("not-json", _Delivery(b"not json"), True, False),
        ("no-correlation-id", _Delivery(_raw(None, "RsStrictReply", {"count": 1})), True, False),
        ("amqp-correlation-id", _Delivery(_raw(None, "RsStrictReply", {"count": 1}), _Props(CORR)), True, False),
        ("undecodable", _Delivery(ok, undecodable="bad-properties"), True, False),
    ]


def _outcome(bridge: Bridge, fut: asyncio.Future[Any] | None) -> tuple[Any, ...]:
    if fut is None or not fut.done():
        result: Any = None
    elif fut.exception() is not None:
        exc = fut.exception()
        result = (type(exc).__name__, str(exc), getattr(exc, "code", None),
                  type(getattr(exc, "reply", None)).__name__)
    else:
        reply = fut.result()
        result = ("ok", type(reply).__name__, reply if isinstance(reply, str)
                  else (reply.type, reply.payload) if isinstance(reply, GenericMessage) else asdict(reply))
    return result, asdict(bridge.stats), sorted(bridge._pending)


async def _run(callback_of: Any, delivery: Any, waits: bool, done: bool) -> tuple[Any, ...]:
    bridge = _bridge(_registry())
    callback = callback_of(bridge)
    fut: asyncio.Future[Any] | None = None
    if waits:
        fut = asyncio.get_running_loop().create_future()
        if done:
            fut.set_result("earlier")
        bridge._pending[CORR] = fut
    callback(delivery)
    return _outcome(bridge, fut)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
async def test_the_step_ends_every_reply_as_on_reply_does(impl: ModuleType, case: tuple[str, Any, bool, bool]) -> None:
    _, delivery, waits, done = case
    general = await _run(lambda b: b._on_reply, delivery, waits, done)
    stepped = await _run(lambda b: _step(impl, b), delivery, waits, done)
    assert stepped == general


async def test_a_plain_reply_is_resolved_by_the_step_itself(impl: ModuleType) -> None:
    bridge = _bridge(_registry())
    seen: list[Any] = []
    bridge._on_reply = seen.append  # type: ignore[method-assign]  # the general path, spied on
    step = _step(impl, bridge)
    fut = asyncio.get_running_loop().create_future()
    bridge._pending[CORR] = fut
    step(_Delivery(_body(RsOrderReply(order_id="A-1", amount=2.5), CORR)))
    reply = fut.result()
    assert seen == [] and type(reply) is RsOrderReply and (reply.order_id, reply.amount) == ("A-1", 2.5)
    assert reply.correlation_id == CORR
    assert bridge.stats.replied == 1 and bridge._pending == {}
    late = _Delivery(_body(RsOrderReply(order_id="A-1"), CORR))
    step(late)  # no one waits any more: the general path counts and drops it
    assert seen == [late]


async def test_a_wire_stage_sends_every_reply_the_general_way(impl: ModuleType) -> None:
    class Verifier(Interceptor):
        def verify_delivery(self, delivery: Any, body: bytes, queue: str) -> bytes | None:
            return None

    bridge = _bridge(_registry())
    seen: list[Any] = []
    bridge._on_reply = seen.append  # type: ignore[method-assign]
    step = _step(impl, bridge)
    bridge.publisher.pipeline.add(Verifier())  # added after the step was made: read per delivery
    assert bridge.publisher.pipeline.has_wire
    d = _Delivery(_body(RsOrderReply(order_id="A-1"), CORR))
    bridge._pending[CORR] = asyncio.get_running_loop().create_future()
    step(d)
    assert seen == [d] and not bridge._pending[CORR].done()


async def test_close_fails_what_the_step_would_have_matched(impl: ModuleType) -> None:
    bridge = _bridge(_registry())
    step = _step(impl, bridge)
    fut = asyncio.get_running_loop().create_future()
    bridge._pending[CORR] = fut
    bridge._fail_pending(errors.BridgeClosedError("closed"))
    assert isinstance(fut.exception(), errors.BridgeClosedError)
    step(_Delivery(_body(RsOrderReply(order_id="A-1"), CORR)))  # the dict it holds is the bridge's, emptied
    assert bridge.stats.late_replies == 1 and bridge.stats.replied == 0


def test_no_ack_hook_settles_then_steps(impl: ModuleType) -> None:
    calls: list[Any] = []

    class Owner:
        stats = type("S", (), {"replied": 0})()
        publisher = type("P", (), {"pipeline": type("Pl", (), {"has_wire": False})()})()

        def _on_reply(self, d: Any) -> None:
            calls.append(("general", d.delivery_tag))

    step = impl.ReplyStep(Owner(), {}, {}, _decode_envelope, {}, plan_for, error_of, ())
    hook = step.no_ack_hook(lambda tag, multiple: calls.append(("settle", tag, multiple)))
    hook(_Delivery(b"not json", tag=7))
    assert calls == [("settle", 7, False), ("general", 7)]
    with pytest.raises(TypeError):
        step.no_ack_hook(None)


class _Conn:
    """What an AMQP Channel reads of its connection for consuming."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._reader = _frames.FrameReader()
        self._wbuf = bytearray()
        self._flush_pending = False

    def _schedule_flush(self) -> None:
        self._flush_pending = True


def _deliver_frames(tag: int, body: bytes, props: bytes, ctag: str = "reply-tag") -> bytes:
    from pamqp import commands, frame

    head = struct.pack(">HHQ", 60, 0, len(body)) + props
    return (frame.marshal(commands.Basic.Deliver(ctag, tag, False, "", "bridge.reply.x"), 1)
            + struct.pack(">BHI", 2, 1, len(head)) + head + b"\xce"
            + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce")


async def test_the_channel_hooks_a_no_ack_reply_step_into_the_frame_reader(impl: ModuleType) -> None:
    """basic_consume(no_ack=True) with the step: replies are matched inside ``feed`` (no item comes
    back), their tags settled on the channel; a callback without ``no_ack_hook`` keeps the item path."""
    conn = _Conn(asyncio.get_running_loop())
    ch = Channel(conn, 1)
    ch._open = True
    bridge = _bridge(_registry())
    ch._add_consumer("reply-tag", _Consumer("bridge.reply.x", _step(impl, bridge), None, True))
    futs = {}
    data = b""
    for tag in (1, 2, 3):
        corr = str(uuid.uuid4())
        futs[corr] = bridge._pending[corr] = conn.loop.create_future()
        out = build(RsOrderReply(order_id=f"o-{tag}"), correlation_id=corr, persistent=False)
        data += _deliver_frames(tag, out.body, bytes(out.properties))
    assert conn._reader.feed(data) == []
    assert conn._reader.hook_errors == []
    assert [f.result().order_id for f in futs.values()] == ["o-1", "o-2", "o-3"]
    assert ch._acks.settled_upto == 3 and conn._wbuf == bytearray()  # no-ack: settled, nothing sent

    seen: list[Any] = []
    ch._forget_consumer("reply-tag")
    ch._add_consumer("plain", _Consumer("bridge.reply.x", seen.append, None, True))
    out = build(RsOrderReply(order_id="o-4"), correlation_id=CORR, persistent=False)
    items = conn._reader.feed(_deliver_frames(4, out.body, bytes(out.properties), "plain"))
    assert len(items) == 1 and seen == []
    ch._on_frame(items[0])
    assert seen == items and ch._acks.settled_upto == 4


# ---------------------------------------------------------------------------------- responder side
class _Recorder:
    """A reply publisher's target: records what is published (``publish_nowait``'s frames' parts)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def publish_nowait(self, body: bytes, exchange: str, routing_key: str, properties: Any, *,
                       mandatory: bool = False, **kw: Any) -> None:
        env = orjson.loads(body)
        self.sent.append((exchange, routing_key, env["type"], env["correlationId"], env["payload"],
                          bytes(properties)))


class _Stamp(Interceptor):
    async def before_publish(self, ctx: Any) -> None:
        return None


_AT = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)


def _request_ctx(msg: Any, *, corr: str | None = CORR, delivery_mode: int = 2,
                 props_corr: str | None = None, reply_to: str | None = None) -> Any:
    from mmate_fast.messaging import MessageContext
    from mmate_fast.transports.base import BasicProperties

    sent = copy.copy(msg)  # the envelope as it arrived (the handler's hooks read msg.reply_to itself)
    sent.reply_to = ""
    env = _decode_envelope(build(sent, correlation_id=corr, reply_to=reply_to, persistent=delivery_mode == 2).body)
    delivery = _Delivery(b"", BasicProperties(delivery_mode=delivery_mode, correlation_id=props_corr))
    return MessageContext(delivery, env, msg, "svc-queue", None)


def _hook_cases() -> list[tuple[str, Any, Any, dict[str, Any], str]]:
    """(name, result, request, _request_ctx options, reply publisher: ok / none / interceptor / bad)."""
    asked = RsGetOrder(order_id="A-1")
    asked.reply_to = "bridge.reply.0123abcd"
    unaddressed = RsGetOrder(order_id="A-2")
    enveloped = RsGetOrder(order_id="A-3")
    enveloped.reply_to = ""
    too_long = RsGetOrder(order_id="A-4")
    too_long.reply_to = "q" * 256
    fixed = {"id": "5b0f7c1e-2d3a-4e5f-8a9b-0c1d2e3f4a5b", "timestamp": _AT}  # the same bytes on both paths
    ok = RsOrderReply(order_id="A-1", amount=1.5, **fixed)
    generic_reply = GenericMessage(type="RsGetOrderResult", payload={"x": 1}, headers={"x-message-kind": "reply"},
                                   **fixed)
    return [
        ("typed", ok, asked, {}, "ok"),
        ("typed-transient", ok, asked, {"delivery_mode": 1}, "ok"),
        ("not-a-reply", RsGetOrder(order_id="x"), asked, {}, "ok"),
        ("generic-reply", generic_reply, asked, {}, "ok"),
        ("generic-not-reply", GenericMessage(type="Whatever", payload={}), asked, {}, "ok"),
        ("no-reply-address", ok, unaddressed, {}, "ok"),
        ("envelope-reply-address", ok, enveloped, {"reply_to": "bridge.reply.fromenvl"}, "ok"),
        ("no-envelope-correlation", ok, asked, {"corr": None, "props_corr": "p-1"}, "ok"),
        ("refused-reply-address", ok, too_long, {}, "ok"),
        ("no-reply-publisher", ok, asked, {}, "none"),
        ("publish-interceptor", ok, asked, {}, "interceptor"),
    ]


def _client_for(publisher_kind: str) -> tuple[Any, _Recorder]:
    from mmate_fast.client import Client
    from mmate_fast.messaging.pipeline import Pipeline

    client = Client(service_name="rs-responder")
    rec = _Recorder()
    if publisher_kind != "none":
        pipeline = Pipeline([_Stamp()]) if publisher_kind == "interceptor" else Pipeline()
        client._reply_publisher = Publisher(rec, confirms=False, pipeline=pipeline)
    return client, rec


def _call(hook_of: Any, case: tuple[str, Any, Any, dict[str, Any], str],
          caplog: pytest.LogCaptureFixture) -> tuple[Any, ...]:
    _, result, msg, ctx_options, publisher_kind = case
    client, rec = _client_for(publisher_kind)
    ctx = _request_ctx(msg, **ctx_options)
    caplog.clear()
    try:
        out = hook_of(client)(result, msg, ctx)
    except errors.MmateError as exc:
        out = ("raised", type(exc).__name__, str(exc))
    if asyncio.iscoroutine(out):
        out.close()
        out = "coroutine"
    return out, rec.sent, [r.getMessage() for r in caplog.records if r.name == "mmate_fast.client"]


@pytest.mark.parametrize("case", _hook_cases(), ids=lambda c: c[0])
def test_the_reply_hook_answers_as_on_handler_result(impl: ModuleType, case: Any,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from mmate_fast.client import _reply_not_sent

    general = _call(lambda c: c._on_handler_result, case, caplog)
    hooked = _call(lambda c: impl.ReplyHook(c, c._on_handler_result, _PLANS, MessageKind.REPLY,
                                            _reply_not_sent, errors.MmateError), case, caplog)
    assert hooked == general
    if case[0] in ("typed", "typed-transient", "envelope-reply-address", "no-envelope-correlation"):
        assert len(general[1]) == 1  # the case sends a reply (the comparison is not vacuous)


def test_the_reply_hook_sends_a_typed_reply_itself(impl: ModuleType) -> None:
    from mmate_fast.client import _reply_not_sent

    client, rec = _client_for("ok")
    general_calls: list[Any] = []
    hook = impl.ReplyHook(client, lambda *a: general_calls.append(a), _PLANS, MessageKind.REPLY,
                          _reply_not_sent, errors.MmateError)
    msg = RsGetOrder(order_id="A-1")
    msg.reply_to = "bridge.reply.0123abcd"
    ctx = _request_ctx(msg)
    reply = RsOrderReply(order_id="A-1")
    plan_for(RsOrderReply)
    assert hook(reply, msg, ctx) is None and general_calls == [] and len(rec.sent) == 1
    assert rec.sent[0][:4] == ("", "bridge.reply.0123abcd", "RsOrderReply", CORR)
    assert hook.direct(reply, msg, ctx.delivery, ctx.envelope) is True and len(rec.sent) == 2
    no_address = RsGetOrder(order_id="A-2")
    assert hook.direct(reply, no_address, ctx.delivery, ctx.envelope) is False and len(rec.sent) == 2
    assert hook.direct(RsGetOrder(), msg, ctx.delivery, ctx.envelope) is True and len(rec.sent) == 2


def test_a_client_installs_the_compiled_hook_unless_overridden() -> None:
    from mmate_fast import client as client_mod

    class Custom(client_mod.Client):
        def _on_handler_result(self, result: Any, msg: Any, ctx: Any) -> Any:
            return None

    plain = client_mod.Client(service_name="rs-a")._result_hook()
    custom = Custom(service_name="rs-b")._result_hook()
    assert getattr(custom, "__func__", None) is Custom._on_handler_result
    if client_mod._REPLY_HOOK:
        assert type(plain).__name__ == "ReplyHook"
    else:
        assert getattr(plain, "__func__", None) is client_mod.Client._on_handler_result


# ------------------------------------------------------------- responder side: the sink write itself
class _SinkConn:
    """The Connection attributes a PublishSink reads (nothing is flushed)."""

    def __init__(self) -> None:
        self._wbuf = bytearray()
        self._flush_pending = False

    def _schedule_flush(self) -> None:
        self._flush_pending = True


class _SinkTarget:
    """A reply channel with a real PublishSink (a new one when the old one closed), recording what
    takes the general path (``publish_nowait``) into the same buffer."""

    def __init__(self) -> None:
        self.conn = _SinkConn()
        self.sinks = [_frames_sink(self.conn)]
        self.general = 0

    def publish_sink(self) -> Any:
        if not self.sinks[-1].open:
            self.sinks.append(_frames_sink(self.conn))
        return self.sinks[-1]

    def publish_nowait(self, body: bytes, exchange: str, routing_key: str, properties: bytes, *,
                       mandatory: bool = False, **kw: Any) -> None:
        self.general += 1
        _frames.append_publish(self.conn._wbuf, 3, exchange, routing_key, body, properties, mandatory, 131072)


def _frames_sink(conn: _SinkConn) -> Any:
    return load("wire").PublishSink(conn, 3, 131072)


def _sink_client(profile: str) -> tuple[Any, _SinkTarget]:
    from mmate_fast.client import Client

    client = Client(service_name="rs-responder", wire_profile=profile)
    target = _SinkTarget()
    client._reply_publisher = Publisher(target, confirms=False, wire_profile=profile)
    return client, target


def _sink_run(hook_of: Any, profile: str, case: tuple[str, Any, Any, dict[str, Any], str],
              caplog: pytest.LogCaptureFixture) -> tuple[Any, ...]:
    _, result, msg, ctx_options, _ = case
    if isinstance(result, RsOrderReply):  # a set timestamp takes the general path: the clock's
        result = copy.copy(result)
        result.timestamp = None
    client, target = _sink_client(profile)
    ctx = _request_ctx(msg, **ctx_options)
    caplog.clear()
    hook = hook_of(client)
    outs = [hook(result, msg, ctx) for _ in range(2)]  # the second from the hook's cache
    return (outs, bytes(target.conn._wbuf), target.general, client._reply_publisher.published,
            [r.getMessage() for r in caplog.records if r.name == "mmate_fast.client"])


@pytest.mark.parametrize("profile", ["go", "lean"])
@pytest.mark.parametrize("case", _hook_cases()[:9], ids=lambda c: c[0])
def test_the_reply_hook_writes_the_bytes_on_handler_result_writes(
        impl: ModuleType, profile: str, case: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Into a real PublishSink: the same frames, counts, warnings and return values as the
    general path (``reply_nowait``), Go's wire and lean, persistent and transient."""
    from mmate_fast.client import _reply_not_sent

    for _ in range(3):  # the same second for both (the timestamp the plan writes)
        t0 = int(time.time())
        general = _sink_run(lambda c: c._on_handler_result, profile, case, caplog)
        hooked = _sink_run(lambda c: impl.ReplyHook(c, c._on_handler_result, _PLANS, MessageKind.REPLY,
                                                    _reply_not_sent, errors.MmateError), profile, case, caplog)
        if int(time.time()) == t0:
            break
    assert hooked == general
    if case[0] in ("typed", "typed-transient", "envelope-reply-address", "no-envelope-correlation"):
        assert general[1] and general[2] == 0 and general[3] == 2  # written into the sink, twice


def test_the_reply_hook_writes_into_the_sink_without_reply_nowait(impl: ModuleType) -> None:
    """A typed reply goes from the hook into the reply publisher's sink itself (no ``reply_nowait``
    frame); a closed sink is replaced as ``reply_nowait`` replaces it, a new reply publisher (a
    reconnect) gets its own plans, and what the plan declines still goes through ``reply_nowait``."""
    from mmate_fast.client import _reply_not_sent

    client, target = _sink_client("go")
    hook = impl.ReplyHook(client, client._on_handler_result, _PLANS, MessageKind.REPLY, _reply_not_sent,
                          errors.MmateError)
    calls: list[Any] = []
    publisher = client._reply_publisher
    original = publisher.reply_nowait

    def spy(*a: Any) -> Any:
        calls.append(a)
        return original(*a)

    publisher.reply_nowait = spy
    msg = RsGetOrder(order_id="A-1")
    msg.reply_to = "bridge.reply.0123abcd"
    ctx = _request_ctx(msg)
    reply = RsOrderReply(order_id="A-1")
    assert hook.direct(reply, msg, ctx.delivery, ctx.envelope) is True
    assert calls == [] and publisher.published == 1 and target.conn._wbuf and target.general == 0
    target.sinks[-1].open = False  # the channel closed: the next reply takes the new one
    n = len(target.conn._wbuf)
    assert hook.direct(reply, msg, ctx.delivery, ctx.envelope) is True
    assert calls == [] and len(target.sinks) == 2 and publisher._sink is target.sinks[1]
    assert len(target.conn._wbuf) == 2 * n and publisher.published == 2
    long = RsGetOrder(order_id="A-2")
    long.reply_to = "q" * 256  # the plan declines; reply_nowait's general path refuses it
    assert hook.direct(reply, long, ctx.delivery, ctx.envelope) is True
    assert len(calls) == 1 and len(target.conn._wbuf) == 2 * n and publisher.published == 2
    client2, target2 = _sink_client("lean")
    client._reply_publisher = client2._reply_publisher  # a new reply publisher: its own (lean) plan
    assert hook.direct(reply, msg, ctx.delivery, ctx.envelope) is True
    assert len(target.conn._wbuf) == 2 * n and target2.conn._wbuf and client2._reply_publisher.published == 1
    assert len(target2.conn._wbuf) < n  # lean: Go's properties without the AMQP header table


def test_reply_plan_is_the_plan_reply_nowait_writes_with() -> None:
    target = _SinkTarget()
    pub = Publisher(target, confirms=False)
    reply = RsOrderReply(order_id="A-1")
    plan = pub.reply_plan(reply, False)
    assert plan is not None and pub.reply_plan(reply, False) is plan and pub.reply_plan(reply, True) is not plan
    assert Publisher(target, confirms=True).reply_plan(reply) is None
    assert Publisher(target, pipeline=_pipeline_with(_Stamp())).reply_plan(reply) is None
    assert pub.reply_plan(GenericMessage(type="X", payload={}), True) is None


def _pipeline_with(interceptor: Any) -> Any:
    from mmate_fast.messaging.pipeline import Pipeline

    return Pipeline([interceptor])


def test_a_publish_interceptor_added_later_sends_the_next_reply_the_general_way(impl: ModuleType) -> None:
    """The hook reads its reply publisher's pipeline and confirm mode once per publisher, but whether
    that pipeline has publish interceptors on every reply: one added after the hook wrote a reply
    sends the next one through ``_on_handler_result``; a ContractPlan's verdict kept per class does
    not stop a non-reply result from being ignored."""
    from mmate_fast.client import _reply_not_sent

    client, _ = _sink_client("go")
    general: list[Any] = []

    def on_result(result: Any, msg: Any, ctx: Any) -> None:
        general.append(result)

    hook = impl.ReplyHook(client, on_result, _PLANS, MessageKind.REPLY, _reply_not_sent, errors.MmateError)
    msg = RsGetOrder(order_id="A-1")
    msg.reply_to = "bridge.reply.0123abcd"
    ctx = _request_ctx(msg)
    reply = RsOrderReply(order_id="A-1")
    publisher = client._reply_publisher
    assert hook(reply, msg, ctx) is None and publisher.published == 1 and not general
    publisher.pipeline.add(_Stamp())
    assert hook(reply, msg, ctx) is None and publisher.published == 1 and general == [reply]
    assert hook.direct(reply, msg, ctx.delivery, ctx.envelope) is False
    assert hook.direct(RsGetOrder(order_id="x"), msg, ctx.delivery, ctx.envelope) is True  # not a reply
    assert general == [reply]
