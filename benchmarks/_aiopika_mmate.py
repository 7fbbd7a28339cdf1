"""aio-pika at the Mmate level, written the way a good aio-pika user would: the same envelope bytes
as ours, built per message with an explicit dict and orjson.

publish: a dataclass event per message -> ``envelope()``: a fresh ``str(uuid.uuid4())`` id, the
timestamp formatted once per second, the mmate-go header set and the payload as explicit dict
literals in our key order -> ``orjson.dumps`` (exactly our 692 bytes: checked at startup against
_common.BODY, our encoder's template) -> aio_pika.Message with the same headers/content_type/
delivery_mode/message_id/type/timestamp -> exchange.publish. consume: ``orjson.loads``, the payload
keys read explicitly into the dataclass, a plain handler, then ``await message.ack()``.
publish-confirm: a channel with publisher confirms, ``asyncio.gather`` over windows of 1000
``exchange.publish`` calls (aio-pika's idiom); persistent into a durable queue under BENCH_PERSISTENT=1.
Run as ``BENCH_BODY=mmate python benchmarks/_aiopika_mmate.py WORKLOAD``.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from _common import (
    AMQP_URL,
    BODY,
    PERSISTENT,
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
SOURCE = "mmate-python"
#: (whole second, its RFC 3339 form): the envelope timestamp is formatted once per second
_now: list[Any] = [0, ""]


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


def new_event(i: int, sent_at_ns: str = "0" * 19) -> OrderCreatedEvent:
    return OrderCreatedEvent(order_id=f"ORD-{i:08d}", customer_id="CUST-00000042", amount=10.42,
                             currency="EUR", sent_at_ns=sent_at_ns, aggregate_id="order-42")


def utc_now() -> tuple[int, str]:
    """Now in whole seconds and as ``YYYY-MM-DDThh:mm:ssZ`` (Mmate's envelope timestamp)."""
    sec = int(time.time())
    if sec != _now[0]:
        _now[0], _now[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))
    return sec, _now[1]


def envelope(evt: OrderCreatedEvent, msg_id: str, ts: str) -> tuple[dict[str, Any], bytes]:
    """(headers, body) of ``evt``'s Mmate envelope: explicit dicts, keys in our order, orjson."""
    headers = {
        "delivery-mode": 2 if PERSISTENT else 1, "expiration": "300000", "message-id": msg_id,
        "message-type": TYPE,
        "priority": 0, "source": SOURCE, "timestamp": ts, "x-aggregate-id": evt.aggregate_id,
        "x-message-id": msg_id, "x-message-kind": "event", "x-message-type": TYPE,
        "x-sequence": str(evt.sequence), "x-source": SOURCE, "x-version": "1.0",
    }
    payload = {"aggregateId": evt.aggregate_id, "amount": evt.amount, "currency": evt.currency,
               "customerId": evt.customer_id, "orderId": evt.order_id, "sentAtNs": evt.sent_at_ns,
               "sequence": evt.sequence}
    body = orjson.dumps({"id": msg_id, "type": TYPE, "timestamp": ts, "headers": headers, "payload": payload})
    return headers, body


def check_same_bytes() -> None:
    """Exit with a clear message unless ``envelope()`` gives exactly our encoder's bytes (_common.BODY,
    the template event 42 with its id and timestamp): the ratio compares equal work only then."""
    ours = orjson.loads(BODY)
    _, body = envelope(new_event(42), ours["id"], ours["timestamp"])
    if body != BODY:
        sys.exit(f"{CLIENT}: the hand-written envelope ({len(body)} bytes) differs from ours "
                 f"({len(BODY)} bytes); fix envelope() in {__file__}:\n{body!r}\n{BODY!r}")


def to_message(evt: OrderCreatedEvent) -> Any:
    """The Mmate envelope of ``evt`` as an aio_pika.Message (what a hand-written publisher does)."""
    from aio_pika import DeliveryMode, Message

    msg_id = str(uuid.uuid4())
    sec, ts = utc_now()
    headers, body = envelope(evt, msg_id, ts)
    return Message(body, headers=headers, content_type="application/json",
                   delivery_mode=DeliveryMode.PERSISTENT if PERSISTENT else DeliveryMode.NOT_PERSISTENT,
                   message_id=msg_id, type=TYPE, timestamp=sec)


def from_body(body: bytes) -> OrderCreatedEvent:
    env = orjson.loads(body)
    if env["type"] != TYPE:
        raise ValueError(f"unexpected type {env['type']!r}")
    p = env["payload"]
    return OrderCreatedEvent(order_id=p["orderId"], customer_id=p["customerId"], amount=p["amount"],
                             currency=p["currency"], sent_at_ns=p["sentAtNs"], aggregate_id=p["aggregateId"],
                             sequence=p["sequence"])


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


async def _publish_confirmed(q: str, n: int, dl: float) -> dict[str, Any]:
    """publish-confirm: aio-pika's idiom, asyncio.gather over windows of 1000 confirmed publishes."""
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel(publisher_confirms=True)
    ex = ch.default_exchange
    done = 0
    sp = Span().start()
    while done < n and time.perf_counter() < dl:
        k = min(1000, n - done)
        await asyncio.gather(*[ex.publish(to_message(new_event(i)), routing_key=q)
                               for i in range(done, done + k)])
        done += k
    sp.stop()
    await conn.close()
    return {"count": done, **sp.fields(), "capped": done < n}


def publish(a: argparse.Namespace) -> dict[str, Any]:
    admin = RawAMQP()
    q = unique_name(CLIENT, a.workload)
    admin.declare(q)
    try:
        dl = deadline()
        if a.workload == "publish-confirm":
            return dict(run_loop(lambda: _publish_confirmed(q, a.messages, dl), a.loop))
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
    "publish-confirm": publish,
    "consume": consume,
    "e2e": e2e,
    "e2e-consumer": e2e_consumer,
}

if __name__ == "__main__":
    check_same_bytes()
    child_main(CLIENT, RUNNERS)
