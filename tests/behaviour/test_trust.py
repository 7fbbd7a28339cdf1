"""Trust (issue 8 item 1) through the Client on both transports: replies are verified like every
other delivery, verification runs before anything decodes the body whatever the interceptor order,
the signature covers the headers that steer handling, replays and stale messages are refused."""
from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.client import Client
from mmate_fast.contracts import Event, Query, Reply
from mmate_fast.interceptors import (
    ENCRYPTION_HEADER,
    EncryptionInterceptor,
    FilterInterceptor,
    SigningInterceptor,
    sign_message,
)
from mmate_fast.messaging import MessageContext, topology
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.pipeline import Interceptor, PublishContext
from mmate_fast.reliability import FixedDelay, TtlRetry
from mmate_fast.reliability.ttl_retry import ATTEMPT_HEADER, delay_queue_name
from mmate_fast.transports import connect
from mmate_fast.transports.base import BasicProperties
from tests.behaviour.behaviour_helpers import drain_queue, wait_until

_frames = load("frames")

SECRET = b"trust-secret-0123456789abcdef0123"
WRONG = b"wrong-secret-0123456789abcdef0123"
KEY = bytes(range(32))


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
def service(conn: Any, names: Any) -> str:
    """A unique service name; its queue and DLQ are deleted after the test (by ``conn``)."""
    return str(names.service("trust"))


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
        props.headers = {**props.headers, "x-signature": sign_message(WRONG, props, body)}  # right form
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
        [captured] = await drain_queue(probe, probe_q, expect=1)
        await probe.publish(captured.body, "", c.service_queue, captured.properties)  # the replay
        await wait_until(lambda: sub.stats.reasons["replayed"] == 1 and sub.stats.dead_lettered == 1)
        await c.publish_event(TrEvt(n=2, aggregate_id="a"))
        await wait_until(lambda: got == [1, 2])
        await probe.close()


async def test_a_forged_reply_does_not_cut_short_the_genuine_one(url: str, service: str) -> None:
    """Refused replies are dropped, not raised: the correctly signed reply that follows a forged
    one answers the request."""

    def forge_then_answer(corr: str, reply_to: str) -> list[tuple[bytes, Any]]:
        forged = _reply_wire(TrReply(item="x", status="forged"), corr)
        body, props = _reply_wire(TrReply(item="x", status="genuine"), corr)
        props.headers = {**props.headers, "x-signature": sign_message(SECRET, props, body)}
        return [forged, (body, props)]

    async with Client(url, service_name=service, interceptors=[SigningInterceptor(SECRET)]) as client, \
            FakeResponder(url, "TrGet", forge_then_answer):
        reply = await client.request(TrGet(item="x"), timeout=5)
        assert isinstance(reply, TrReply) and reply.status == "genuine"
        assert (client.bridge.stats.refused, client.bridge.stats.replied) == (1, 1)


async def test_signed_and_encrypted_request_reply_between_two_clients(url: str, service: str) -> None:
    """Requester and responder sign and encrypt (registered in opposite orders); what the broker
    carries is ciphertext; the typed reply arrives."""

    def trust(order: int) -> list[Any]:
        pair = [SigningInterceptor(SECRET, key_id="s1"), EncryptionInterceptor(KEY, "e1")]
        return pair if order else pair[::-1]

    async with Client(url, service_name=service, interceptors=trust(0)) as srv, \
            Client(url, service_name=f"{service}-req", declare_topology=False, interceptors=trust(1)) as req:

        @srv.handler(TrGet)
        async def get(q: TrGet) -> TrReply:
            return TrReply(item=q.item, status="in stock")

        await srv.start_consuming()
        probe = await req.connection.channel()
        probe_q = f"{service}-probe"
        await probe.queue_declare(probe_q, exclusive=True, auto_delete=True)
        await probe.queue_bind(probe_q, topology.QUERIES, "qry.TrGet")
        reply = await req.request(TrGet(item="widget-4711"), timeout=5)
        assert isinstance(reply, TrReply) and (reply.item, reply.status) == ("widget-4711", "in stock")
        [seen] = await drain_queue(probe, probe_q, expect=1)
        assert b"widget-4711" not in seen.body and isinstance(orjson.loads(seen.body)["payload"], str)
        assert seen.properties.headers[ENCRYPTION_HEADER] == "aes-gcm"
        assert seen.properties.headers["x-signature-key"] == "s1"
        assert req.bridge.stats.refused == 0
        await probe.close()


async def test_bad_ciphertext_and_plain_messages_go_to_the_dlq_and_the_consumer_goes_on(
        url: str, service: str) -> None:
    got: list[int] = []
    async with Client(url, service_name=service, interceptors=[EncryptionInterceptor(KEY, "e1")]) as c, \
            Client(url, service_name=f"{service}-plain", declare_topology=False) as plain:
        c.add_handler(TrEvt, lambda e: got.append(e.n))
        sub = await c.start_consuming()
        await c.publish_event(TrEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: got == [1])
        # the same event, its ciphertext changed
        msg = TrEvt(n=2, aggregate_id="a")
        out = build(msg)
        ctx = PublishContext(msg, None, None, {})
        ctx.outgoing = out
        EncryptionInterceptor(KEY, "e1").seal(ctx)
        wire = orjson.loads(ctx.outgoing.body)
        sealed = bytearray(base64.b64decode(wire["payload"]))
        sealed[-1] ^= 1  # one bit of the tag
        wire["payload"] = base64.b64encode(sealed).decode()
        raw = await c.connection.channel()
        await raw.publish(orjson.dumps(wire), "", c.service_queue, ctx.properties())
        await plain.publish_event(TrEvt(n=3, aggregate_id="a"))  # not encrypted
        await wait_until(lambda: sub.stats.reasons["bad-ciphertext"] == 1 and sub.stats.reasons["not-encrypted"] == 1)
        await c.publish_event(TrEvt(n=4, aggregate_id="a"))
        await wait_until(lambda: got == [1, 4] and sub.stats.dead_lettered == 2)
        dead = await drain_queue(raw, topology.dead_letter_queue(c.service_queue), expect=2)
        reasons = sorted(d.properties.headers["x-mmate-reason"] for d in dead)
        assert reasons == ["bad-ciphertext", "not-encrypted"]
        await raw.close()


async def test_a_stale_signed_message_is_refused_as_expired(url: str, service: str) -> None:
    got: list[int] = []
    async with Client(url, service_name=service,
                      interceptors=[SigningInterceptor(SECRET, max_age=60)]) as c:
        c.add_handler(TrEvt, lambda e: got.append(e.n))
        sub = await c.start_consuming()
        old = TrEvt(n=1, aggregate_id="a", timestamp=datetime.now(UTC) - timedelta(minutes=5))
        out = build(old)
        props, _ = _frames.decode_properties(out.properties)
        props.headers["x-signature"] = sign_message(SECRET, props, out.body)
        raw = await c.connection.channel()
        await raw.publish(out.body, "", c.service_queue, props)
        await c.publish_event(TrEvt(n=2, aggregate_id="a"))
        await wait_until(lambda: got == [2] and sub.stats.reasons["expired"] == 1)
        await wait_until(lambda: sub.stats.dead_lettered == 1)
        await raw.close()


async def test_a_ttl_retry_of_a_signed_message_is_not_a_replay(url: str, conn: Any, names: Any) -> None:
    """A handler failure releases the message id: its retry (same id, same signature) is handled."""
    service = names.service()
    names.queues.append(delay_queue_name(f"{service}-queue", 50))
    seen: list[Any] = []
    async with Client(url, service_name=service, interceptors=[SigningInterceptor(SECRET)],
                      failure_handler=TtlRetry(FixedDelay(0.05, max_retries=3))) as client:

        @client.handler(TrEvt)
        def on_evt(e: TrEvt, ctx: MessageContext) -> None:
            seen.append(ctx.headers.get(ATTEMPT_HEADER))
            if len(seen) < 2:
                raise RuntimeError("not yet")

        sub = await client.start_consuming()
        await client.publish_event(TrEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked >= 2, timeout=10)
        assert seen == [None, 1] and sub.stats.reasons["replayed"] == 0 and sub.stats.dead_lettered == 0


class _Recorder(Interceptor):
    """Refuses bodies holding ``refuse``, breaks on ``boom``; records what it was asked."""

    def __init__(self) -> None:
        self.released: list[str] = []

    def verify_delivery(self, delivery: Any, body: bytes, queue: str) -> bytes | None:
        if b"refuse" in body:
            raise errors.SignatureError("refused by the recorder")
        if b"boom" in body:
            raise RuntimeError("a bug in a verifier")
        return None

    def release_delivery(self, delivery: Any, queue: str) -> None:
        self.released.append(str(delivery.properties.message_id))


async def test_only_failures_after_verification_are_released_and_a_broken_verifier_refuses(
        url: str, service: str) -> None:
    rec = _Recorder()
    async with Client(url, service_name=service, interceptors=[rec]) as c:

        @c.handler(TrEvt)
        def on_evt(e: TrEvt) -> None:
            if e.n == 1:
                raise ValueError("handler fails")

        sub = await c.start_consuming()
        raw = await c.connection.channel()
        for n, tag in ((1, "fails"), (2, "refuse"), (3, "boom"), (4, "ok")):
            out = build(TrEvt(n=n, aggregate_id=tag, id=f"m-{tag}"))
            await raw.publish(out.body, "", c.service_queue, out.properties)
        await wait_until(lambda: sub.stats.acked == 1 and sub.stats.dead_lettered == 3)
        assert rec.released == ["m-fails"]
        assert (sub.stats.reasons["handler-error"], sub.stats.reasons["bad-signature"],
                sub.stats.reasons["interceptor-error"]) == (1, 1, 1)
        await raw.close()
