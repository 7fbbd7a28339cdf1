"""Trust (issue 8 item 1) through the Client on both transports: replies are verified like every
other delivery, verification runs before anything decodes the body whatever the interceptor order,
the signature covers the headers that steer handling, replays and stale messages are refused."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.client import Client
from mmate_fast.contracts import Event, Query, Reply
from mmate_fast.interceptors import FilterInterceptor, SigningInterceptor
from mmate_fast.messaging import topology
from mmate_fast.messaging.outgoing import build
from mmate_fast.transports import connect
from mmate_fast.transports.base import BasicProperties
from tests.behaviour.behaviour_helpers import wait_until

_frames = load("frames")

SECRET = b"trust-secret-0123456789abcdef0123"
WRONG = b"wrong-secret-0123456789abcdef0123"


@dataclass
class TrEvt(Event):
    n: int = 0


@dataclass
class TrGet(Query):
    item: str = ""


@dataclass
class TrReply(Reply):
    item: str = ""
    status: str = ""


@pytest.fixture
async def service(url: str) -> AsyncIterator[str]:
    name = f"trust-{uuid.uuid4().hex[:8]}"
    yield name
    conn = await connect(url)
    try:
        ch = await conn.channel()
        await ch.queue_delete(topology.service_queue(name))
        await ch.queue_delete(topology.dead_letter_queue(topology.service_queue(name)))
    finally:
        await conn.close()


def _reply_wire(reply: Any, correlation_id: str) -> tuple[bytes, Any]:
    """Body and (decoded) AMQP properties of ``reply`` as our publisher would send it."""
    out = build(reply, correlation_id=correlation_id, persistent=False)
    props, _ = _frames.decode_properties(out.properties)
    return out.body, props


class FakeResponder:
    """Consumes the requests of one query type (a queue of its own bound to ``mmate.queries``) and
    answers each with the replies ``answer(correlation_id, reply_to)`` returns: raw (body,
    properties) pairs, published through the default exchange as they are."""

    def __init__(self, url: str, type_name: str,
                 answer: Callable[[str, str], list[tuple[bytes, Any]]]) -> None:
        self.url = url
        self.type_name = type_name
        self.answer = answer
        self.queue = f"trust-responder-{uuid.uuid4().hex[:8]}"
        self.conn: Any = None
        self.requests = 0

    async def __aenter__(self) -> FakeResponder:
        self.conn = await connect(self.url)
        ch = await self.conn.channel()
        await ch.queue_declare(self.queue, exclusive=True, auto_delete=True)
        await ch.queue_bind(self.queue, topology.QUERIES, topology.query_routing_key(self.type_name))
        self._ch = ch
        await ch.basic_consume(self.queue, self._on_request, no_ack=True)
        return self

    def _on_request(self, delivery: Any) -> None:
        self.requests += 1
        env = orjson.loads(delivery.body)
        for body, props in self.answer(env["correlationId"], env["payload"]["replyTo"]):
            self._ch.publish_nowait(body, "", env["payload"]["replyTo"], props)

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()


# --------------------------------------------------------------------------- replies are verified
async def test_forged_replies_are_refused_and_the_request_times_out(url: str, service: str) -> None:
    """An unsigned forged reply and one signed with a wrong key never answer a signing client's
    request: they are dropped and counted (``bridge.stats.refused``), the request times out."""

    def forge(corr: str, reply_to: str) -> list[tuple[bytes, Any]]:
        unsigned = _reply_wire(TrReply(item="x", status="forged"), corr)
        body, props = _reply_wire(TrReply(item="x", status="forged-with-key"), corr)
        props.headers = {**props.headers, "x-signature": hmac.new(WRONG, body, hashlib.sha256).hexdigest()}
        return [unsigned, (body, props)]

    async with Client(url, service_name=service, interceptors=[SigningInterceptor(SECRET)]) as client, \
            FakeResponder(url, "TrGet", forge) as responder:
        with pytest.raises(errors.RequestTimeout):
            await client.request(TrGet(item="x"), timeout=1.0)
        assert responder.requests == 1
        stats = client.bridge.stats
        await wait_until(lambda: stats.refused == 2)
        assert (stats.replied, stats.late_replies, stats.malformed) == (0, 0, 0)


# --------------------------------------------------------------------------- before any decoding
async def test_a_filter_registered_first_cannot_ack_an_unsigned_message(url: str, service: str) -> None:
    """Verification does not depend on the interceptor order: a filter that skips everything, put
    before the signing interceptor, never sees (and acks) an unsigned message."""
    got: list[int] = []
    skip_all = FilterInterceptor(lambda ctx: False)
    async with Client(url, service_name=service, interceptors=[skip_all, SigningInterceptor(SECRET)]) as c:
        c.add_handler(TrEvt, lambda e: got.append(e.n))
        sub = await c.start_consuming()
        out = build(TrEvt(n=1, aggregate_id="a"))
        raw = await c.connection.channel()
        await raw.publish(out.body, "", c.service_queue, out.properties)  # unsigned
        await wait_until(lambda: sub.stats.reasons["bad-signature"] == 1 and sub.stats.dead_lettered == 1)
        assert sub.stats.acked == 0 and skip_all.skipped == 0 and got == []
        await raw.close()


async def test_an_unsigned_body_is_refused_before_it_is_parsed(url: str, service: str) -> None:
    """Not JSON and unsigned: refused as ``bad-signature`` (nothing parsed it), not as ``not-json``."""
    async with Client(url, service_name=service, interceptors=[SigningInterceptor(SECRET)]) as c:
        c.add_handler(TrEvt, lambda e: None)
        sub = await c.start_consuming()
        raw = await c.connection.channel()
        await raw.publish(b"\x00not json at all", "", c.service_queue, BasicProperties(headers={}))
        await wait_until(lambda: sub.stats.reasons["bad-signature"] == 1 and sub.stats.dead_lettered == 1)
        assert sub.stats.reasons["not-json"] == 0
        await raw.close()


async def test_a_replayed_signed_message_is_refused(url: str, service: str) -> None:
    """A genuine signed delivery published again unchanged is refused as ``replayed``; the consumer
    goes on with the next message."""
    got: list[int] = []
    async with Client(url, service_name=service, interceptors=[SigningInterceptor(SECRET)]) as c:
        c.add_handler(TrEvt, lambda e: got.append(e.n))
        sub = await c.start_consuming()
        probe = await c.connection.channel()
        probe_q = f"{service}-probe"
        await probe.queue_declare(probe_q, exclusive=True, auto_delete=True)
        await probe.queue_bind(probe_q, topology.EVENTS, "evt.a.TrEvt")
        await c.publish_event(TrEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: got == [1])
        captured = None
        for _ in range(100):
            captured = await probe.basic_get(probe_q, no_ack=True)
            if captured is not None:
                break
            await asyncio.sleep(0.01)
        assert captured is not None
        await probe.publish(captured.body, "", c.service_queue, captured.properties)  # the replay
        await wait_until(lambda: sub.stats.reasons["replayed"] == 1 and sub.stats.dead_lettered == 1)
        await c.publish_event(TrEvt(n=2, aggregate_id="a"))
        await wait_until(lambda: got == [1, 2])
        await probe.close()
