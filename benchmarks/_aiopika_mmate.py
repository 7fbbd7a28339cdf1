"""aio-pika at the Mmate level, as its users write it: the envelope built per message in Python.

publish: a dataclass event per message -> dict envelope (uuid4 id, ISO timestamp, the mmate-go
header set, payload from dataclasses.asdict with camelCase keys) -> json.dumps(...).encode() ->
aio_pika.Message with the same headers/content_type/delivery_mode/message_id/type/timestamp ->
exchange.publish. consume: json.loads, snake_case keys -> the dataclass, a plain handler, then
``await message.ack()``. Run as ``BENCH_BODY=mmate python benchmarks/_aiopika_mmate.py WORKLOAD``.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from _common import (
    AMQP_URL,
    PREFETCH,
    E2EState,
    RawAMQP,
    Span,
    broker_cpu_s,
    child_main,
    consume_workload,
    deadline,
    e2e_workload,
    run_loop,
    unique_name,
    wait_event,
    wait_queue_async,
)

CLIENT = "aio_pika"
TYPE = "OrderCreatedEvent"
_CAMEL = re.compile(r"_([a-z])")
_SNAKE = re.compile(r"([A-Z])")


@dataclass
class OrderCreatedEvent:
    """The same event as _mmate_event.OrderCreatedEvent, as a plain dataclass."""

    order_id: str
    customer_id: str
    amount: float
    currency: str
    sent_at_ns: str = "0" * 19
    aggregate_id: str = ""
    sequence: int = 0


def camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def snake(name: str) -> str:
    return _SNAKE.sub(lambda m: "_" + m.group(1).lower(), name)


def new_event(i: int, sent_at_ns: str = "0" * 19) -> OrderCreatedEvent:
    return OrderCreatedEvent(order_id=f"ORD-{i:08d}", customer_id="CUST-00000042", amount=10.42,
                             currency="EUR", sent_at_ns=sent_at_ns, aggregate_id="order-42")


def to_message(evt: OrderCreatedEvent) -> Any:
    """The Mmate envelope of ``evt`` as an aio_pika.Message (what a hand-written publisher does)."""
    from aio_pika import DeliveryMode, Message

    msg_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    ts = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "x-message-type": TYPE, "x-message-id": msg_id, "x-source": "mmate-python", "x-version": "1.0",
        "message-id": msg_id, "message-type": TYPE, "timestamp": ts, "source": "mmate-python",
        "expiration": "300000", "priority": 0, "delivery-mode": 1, "x-message-kind": "event",
        "x-aggregate-id": evt.aggregate_id, "x-sequence": str(evt.sequence),
    }
    payload = {camel(k): v for k, v in dataclasses.asdict(evt).items()}
    body = json.dumps({"id": msg_id, "type": TYPE, "timestamp": ts, "headers": headers,
                       "payload": payload}).encode()
    return Message(body, headers=headers, content_type="application/json",
                   delivery_mode=DeliveryMode.NOT_PERSISTENT, message_id=msg_id, type=TYPE, timestamp=now)


def from_body(body: bytes) -> OrderCreatedEvent:
    env = json.loads(body)
    if env.get("type") != TYPE:
        raise ValueError(f"unexpected type {env.get('type')!r}")
    return OrderCreatedEvent(**{snake(k): v for k, v in env["payload"].items()})


async def _publish(q: str, n: int, admin: RawAMQP, dl: float) -> dict[str, Any]:
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel(publisher_confirms=False)
    ex = ch.default_exchange
    done = 0
    sp = Span().start()
    for i in range(n):
        await ex.publish(to_message(new_event(i)), routing_key=q)
        done += 1
        if (i & 255) == 0 and time.perf_counter() > dl:
            break
    got = await wait_queue_async(admin, q, done, dl)
    sp.stop()
    await conn.close()
    return {"count": min(done, got), **sp.fields(), "queue_count": got, "capped": got < n}


def publish(a: argparse.Namespace) -> dict[str, Any]:
    admin = RawAMQP()
    q = unique_name(CLIENT, a.workload)
    admin.declare(q)
    try:
        dl = deadline()
        return dict(run_loop(lambda: _publish(q, a.messages, admin, dl), a.loop))
    finally:
        admin.delete(q)
        admin.close()


async def _consume(q: str, n: int, dl: float) -> dict[str, Any]:
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel()
    await ch.set_qos(prefetch_count=PREFETCH)
    queue = await ch.get_queue(q, ensure=False)
    done = asyncio.Event()
    cnt = [0]

    def handle(evt: OrderCreatedEvent) -> None:
        cnt[0] += 1
        if cnt[0] >= n:
            done.set()

    async def on_msg(m: Any) -> None:
        handle(from_body(m.body))
        await m.ack()

    sp = Span().start()
    tag = await queue.consume(on_msg)
    await wait_event(done, dl)
    sp.stop()
    await queue.cancel(tag)
    await conn.close()
    return {"count": cnt[0], **sp.fields(), "capped": cnt[0] < n}


def consume(a: argparse.Namespace) -> dict[str, Any]:
    return consume_workload(CLIENT, a, _consume)


async def _produce(q: str, n: int, dl: float) -> dict[str, Any]:
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel(publisher_confirms=False)
    ex = ch.default_exchange
    now_ns = time.time_ns
    b0 = broker_cpu_s()
    c0 = time.process_time()
    t0 = time.time()
    sent = 0
    for i in range(n):
        await ex.publish(to_message(new_event(i, f"{now_ns():019d}")), routing_key=q)
        sent += 1
        if (i & 255) == 0 and time.perf_counter() > dl:
            break
    cpu = time.process_time() - c0
    await conn.close()
    return {"t0": t0, "cpu_s": cpu, "sent": sent, "b0": b0}


def e2e(a: argparse.Namespace) -> dict[str, Any]:
    return e2e_workload(CLIENT, __file__, a, _produce)


async def _e2e_consumer(q: str, n: int) -> dict[str, Any]:
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel()
    await ch.set_qos(prefetch_count=PREFETCH)
    queue = await ch.get_queue(q, ensure=False)
    st = E2EState(n)
    done = asyncio.Event()
    now_ns = time.time_ns

    def handle(evt: OrderCreatedEvent) -> None:
        st.lat.append((now_ns() - int(evt.sent_at_ns)) * 1e-9)
        st.count += 1
        if st.count >= n:
            st.t_end = time.time()
            done.set()

    async def on_msg(m: Any) -> None:
        handle(from_body(m.body))
        await m.ack()

    tag = await queue.consume(on_msg)
    c0 = time.process_time()
    print("READY", flush=True)
    await wait_event(done, deadline())
    cpu = time.process_time() - c0
    await queue.cancel(tag)
    await conn.close()
    return st.result(cpu)


def e2e_consumer(a: argparse.Namespace) -> dict[str, Any]:
    return dict(run_loop(lambda: _e2e_consumer(a.queue, a.messages), a.loop))


RUNNERS = {
    "publish": publish,
    "consume": consume,
    "e2e": e2e,
    "e2e-consumer": e2e_consumer,
}

if __name__ == "__main__":
    child_main(CLIENT, RUNNERS)
