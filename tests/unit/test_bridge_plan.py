"""The bridge's one-call request path (the class's compiled plan written into the bridge channel's
PublishSink with the correlation id and reply address given per call) sends, byte for byte, what its
general path (``prepare_request``: the publisher's ``prepare`` with the request's options) sends; what
that path must handle still goes there. Runs on whichever impl is loaded (compiled, or the twins
with MMATE_NO_EXTENSIONS=1)."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import bridge as bridge_mod
from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.bridge import Bridge
from mmate_fast.contracts import Command, GenericMessage, Message, Query
from mmate_fast.messaging.publisher import Publisher

_frames = load("frames")
_wire = load("wire")
_CORR = "11111111-2222-4333-8444-555555555555"


@dataclass
class BpQuery(Query):
    order_id: str = ""


@dataclass
class BpCommand(Command):
    amount: float = 0.0


@dataclass
class BpMessage(Message):
    text: str = ""


class _Conn:
    """The Connection attributes a PublishSink reads (nothing is flushed)."""

    def __init__(self) -> None:
        self._wbuf = bytearray()
        self._flush_pending = False

    def _schedule_flush(self) -> None:
        self._flush_pending = True


class _Channel:
    """The bridge's channel: a real PublishSink into ``conn``, or none; records publish_nowait."""

    is_open = True

    def __init__(self, sink: bool) -> None:
        self.conn = _Conn()
        self._sink = _wire.PublishSink(self.conn, 5, 131072) if sink else None
        self.calls = 0

    def publish_sink(self) -> Any:
        return self._sink

    def publish_nowait(self, body: bytes, exchange: str, routing_key: str, properties: bytes, *,
                       mandatory: bool = False) -> None:
        self.calls += 1
        _frames.append_publish(self.conn._wbuf, 5, exchange, routing_key, body, properties, mandatory, 131072)


class _NoTarget:
    def publish_nowait(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("requests go out on the bridge's channel")


def _bridge(sink: bool, profile: str = "go") -> Bridge:
    b = Bridge(None, Publisher(_NoTarget(), wire_profile=profile), reply_queue="bridge.reply.0123abcd")
    b.channel = _Channel(sink)
    b._ready = True
    return b


async def _send(b: Bridge, msg: Any, **options: Any) -> bytes:
    """Send ``msg`` as a request (its reply never comes: the request is cancelled) and return the
    frames written on the bridge's channel."""
    task = asyncio.ensure_future(b.request(msg, timeout=5, **options))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.pending == 0
    out = bytes(b.channel.conn._wbuf)
    b.channel.conn._wbuf.clear()
    return out


def _general(b: Bridge, msg: Any, **options: Any) -> bytes:
    _corr, exchange, routing_key, out = b.prepare_request(msg, **options)
    buf = bytearray()
    _frames.append_publish(buf, 5, exchange, routing_key, out.body, out.properties,
                           bool(options.get("mandatory", False)), 131072)
    return bytes(buf)


@pytest.mark.parametrize("profile", ["go", "lean"])
@pytest.mark.parametrize("persistent", [True, False, None])
async def test_planned_request_sends_what_the_general_path_sends(monkeypatch: pytest.MonkeyPatch, profile: str,
                                                                 persistent: bool | None) -> None:
    monkeypatch.setattr(bridge_mod, "_new_id", lambda: _CORR)
    options = {} if persistent is None else {"persistent": persistent}
    for make in (lambda: BpQuery(id="q-1", order_id="o\u00e9<>"),
                 lambda: BpCommand(id="c-1", amount=2.5, target_service="billing"),
                 lambda: BpMessage(id="m-1", text="t")):
        for _ in range(3):  # the same second for both
            t0 = int(time.time())
            b = _bridge(True, profile)
            got = await _send(b, make(), **options)
            ref = _general(b, make(), persistent=True if persistent is None else persistent)
            if int(time.time()) == t0:
                break
        assert got == ref, (type(make()).__name__, profile)
        assert b.channel.calls == 0 and b._plans, "the one-call path was not taken"
        assert b.stats.sent == 1


async def test_requests_the_plan_declines_take_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge_mod, "_new_id", lambda: _CORR)
    b = _bridge(True)
    q = BpQuery(id="q-2", order_id="o")
    q.timestamp = __import__("datetime").datetime(2025, 1, 1)  # a set timestamp: the general path
    await _send(b, q)
    assert b.channel.calls == 1
    await _send(b, BpQuery(id="q-3"), headers={"x-a": "1"})  # other options: the general path
    assert b.channel.calls == 2
    g = GenericMessage(type="SomeQuery", payload={"a": 1})
    got = await _send(b, g)
    assert b.channel.calls == 3 and b"SomeQuery" in got and g.payload["replyTo"] == b.reply_queue
    with pytest.raises(errors.ContractError):  # a command without its target service
        await b.request(BpCommand(), timeout=1)
    assert b.pending == 0
    b2 = _bridge(False)  # a channel without a publish sink (memory://): the general path
    assert await _send(b2, BpQuery(id="q-4")) and b2.channel.calls == 1
    b2.channel._sink = _wire.PublishSink(b2.channel.conn, 5, 131072)
    assert await _send(b2, BpQuery(id="q-5")) and b2.channel.calls == 1  # a sink once there is one


async def test_a_closed_sink_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    b = _bridge(True)
    await _send(b, BpQuery(id="q-6"))
    old = b._sink
    old.open = False  # the channel closed; start() opened a new one
    b.channel = _Channel(True)
    b._sink = old
    assert await _send(b, BpQuery(id="q-7")) and b._sink is b.channel._sink and b.channel.calls == 0


async def test_the_answer_reaches_a_planned_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """Correlation id and reply address of a planned request are what the reply path matches."""
    from mmate_fast.messaging.outgoing import build

    monkeypatch.setattr(bridge_mod, "_new_id", lambda: _CORR)
    b = _bridge(True)
    q = BpQuery(id="q-8", order_id="o")
    task = asyncio.ensure_future(b.request(q, timeout=5))
    await asyncio.sleep(0)
    assert q.reply_to == b.reply_queue and b"bridge.reply.0123abcd" in b.channel.conn._wbuf

    class _Delivery:
        properties = None
        body = build(GenericMessage(type="BpReply", payload={"success": True, "n": 1}),
                     correlation_id=_CORR).body

    b._on_reply(_Delivery())
    reply = await asyncio.wait_for(task, 1)
    assert isinstance(reply, GenericMessage) and reply.payload["n"] == 1


async def _answered(b: Bridge, order_id: str) -> Any:
    """A request answered through the bridge's reply path (its correlation id read off the wire)."""
    from mmate_fast.messaging.outgoing import build

    task = asyncio.ensure_future(b.request(BpQuery(order_id=order_id), timeout=5))
    await asyncio.sleep(0)
    assert b.pending == 1
    corr = next(iter(b._pending))

    class _Delivery:
        properties = None
        body = build(GenericMessage(type="BpReply", payload={"success": True, "n": order_id}),
                     correlation_id=corr).body

    b._on_reply(_Delivery())
    return await asyncio.wait_for(task, 1)


async def test_requests_on_the_bridges_loop_do_not_ask_for_the_running_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first request finds the running loop; the next ones, inside a task of that same loop, take
    it from the bridge (asyncio.get_running_loop() makes a getpid() syscall per call on 3.11)."""
    asked = []
    running = asyncio.get_running_loop

    def counted() -> asyncio.AbstractEventLoop:
        asked.append(1)
        return running()

    monkeypatch.setattr(bridge_mod.asyncio, "get_running_loop", counted)
    b = _bridge(True)
    for i in range(5):
        assert (await _answered(b, f"o-{i}")).payload["n"] == f"o-{i}"
    assert len(asked) == 1 and b._deadlines is not None and b._deadlines.loop is running()


def test_a_bridge_used_from_another_loop_waits_on_that_loop() -> None:
    """A bridge whose last request ran on a loop that is gone (a second asyncio.run) finds the loop
    running now: its future, deadline buckets and reply all belong to the new loop."""
    b = _bridge(True)
    loops = []

    async def one(order_id: str) -> Any:
        loops.append(asyncio.get_running_loop())
        reply = await _answered(b, order_id)
        assert b._deadlines is not None and b._deadlines.loop is loops[-1]
        return reply

    assert asyncio.run(one("a")).payload["n"] == "a"
    assert asyncio.run(one("b")).payload["n"] == "b"
    assert loops[0] is not loops[1]
