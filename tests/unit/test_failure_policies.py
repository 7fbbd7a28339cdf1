"""The messaging core hands failed deliveries on; the patterns own the policies, injected by the
Client: dead-lettering (reliability) and error replies (bridge). On the embedded broker."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from mmate_fast import errors
from mmate_fast.amqp import ChannelPool
from mmate_fast.bridge import is_request, reply_with_error
from mmate_fast.contracts import Command, Event, GenericMessage
from mmate_fast.messaging import topology
from mmate_fast.messaging.dispatcher import Dispatcher
from mmate_fast.messaging.publisher import Publisher
from mmate_fast.messaging.subscriber import Failure, Subscriber
from mmate_fast.reliability.dead_lettering import REASON_HEADER, DeadLettering
from mmate_fast.transports import connect
from tests.behaviour.behaviour_helpers import drain_queue, queue_depth, wait_until


@dataclass
class PolicyJob(Event):
    job: str = ""


@dataclass
class PolicyCommand(Command):
    job: str = ""


async def _fail_one(dead_letterer: Any) -> tuple[Any, Any, str]:
    """A Subscriber of its own on memory:// whose handler fails one message; returns (connection,
    subscription, queue) once that message was settled."""
    conn: Any = await connect(f"memory://policies-{uuid.uuid4().hex[:8]}")
    ch = await conn.channel()
    queue = f"policies.{uuid.uuid4().hex[:8]}"
    await ch.queue_declare(queue)
    dispatcher = Dispatcher()

    def fail(msg: PolicyJob) -> None:
        raise ValueError(f"cannot do {msg.job}")

    dispatcher.add_handler(PolicyJob, fail)
    pool = await ChannelPool(conn, 1, publisher_confirms=True).open()
    subscriber = Subscriber(conn, dispatcher, dead_letter_target=pool,
                            dead_letterer=None if dead_letterer is None else dead_letterer(conn))
    sub = await subscriber.subscribe(queue)
    await Publisher(pool).publish(PolicyJob(job="x", aggregate_id="a"), exchange="", routing_key=queue)
    await wait_until(lambda: sub.stats.rejected + sub.stats.dead_lettered == 1, timeout=5)
    return conn, sub, queue


async def test_the_messaging_core_alone_rejects_a_failed_delivery() -> None:
    """Without an injected dead-letterer the subscriber knows no DLQ: it rejects (and declares none)."""
    conn, sub, queue = await _fail_one(None)
    try:
        assert (sub.stats.rejected, sub.stats.dead_lettered) == (1, 0)
        assert await queue_depth(conn, topology.dead_letter_queue(queue)) is None
    finally:
        await conn.close()


async def test_the_injected_dead_lettering_keeps_it_with_the_reason() -> None:
    conn, sub, queue = await _fail_one(DeadLettering)
    try:
        assert (sub.stats.rejected, sub.stats.dead_lettered) == (0, 1)
        [dead] = await drain_queue(await conn.channel(), topology.dead_letter_queue(queue), expect=1)
        assert dead.properties.headers[REASON_HEADER] == "handler-error"
    finally:
        await conn.close()


async def test_a_dead_letterer_that_raises_has_the_delivery_rejected() -> None:
    class Broken:
        def __init__(self, conn: Any) -> None:
            self.calls = 0

        async def __call__(self, failure: Failure) -> None:
            self.calls += 1
            raise RuntimeError("broken dead-letterer")

    conn, sub, _ = await _fail_one(Broken)
    try:
        assert (sub.stats.rejected, sub.stats.dead_lettered) == (1, 0)
        assert sub.subscriber.dead_letterer.calls == 1
    finally:
        await conn.close()


class _Replies:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, str, dict[str, Any]]] = []

    async def publish_reply(self, reply: Any, reply_to: str, **options: Any) -> str:
        self.sent.append((reply, reply_to, options))
        return "id"


@dataclass
class _Ctx:
    reply_to: str | None
    correlation_id: str | None = "c-1"
    message_id: str = "m-1"
    delivery: Any = field(default_factory=lambda: SimpleNamespace(properties=SimpleNamespace(delivery_mode=2)))
    envelope: Any = field(default_factory=lambda: SimpleNamespace(type="PolicyCommand"))


async def test_the_error_reply_policy_answers_requests_only() -> None:
    replies: Any = _Replies()
    command = PolicyCommand(job="x", target_service="svc")
    assert is_request(command) and not is_request(PolicyJob(job="x"))
    assert is_request(GenericMessage(type="T", payload={"replyTo": "q"}))
    assert not await reply_with_error(replies, ValueError("no"), PolicyJob(job="x"), _Ctx("q"))
    assert not await reply_with_error(replies, ValueError("no"), command, _Ctx(None))
    exc = errors.MmateError("out of stock")
    exc.code = "OUT_OF_STOCK"  # type: ignore[attr-defined]
    assert await reply_with_error(replies, exc, command, _Ctx("bridge.reply.1"))
    [(reply, reply_to, options)] = replies.sent
    assert (reply.error_code, reply.error_message, reply.success) == ("OUT_OF_STOCK", "out of stock", False)
    assert reply_to == "bridge.reply.1" and options == {"correlation_id": "c-1", "persistent": True}
