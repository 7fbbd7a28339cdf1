"""aio-pika, used idiomatically: aio_pika.Message + exchange.publish; queue.consume with an async
callback calling message.ack(). Run as ``python benchmarks/_aiopika.py WORKLOAD --messages N``.
"""
from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import _aiopika_alias  # noqa: F401  (BENCH_AIO_PIKA=compat: aio_pika is the mmate_fast facade)
from _common import (
    AMQP_URL,
    BATCH,
    BODY,
    PERSISTENT,
    PREFETCH,
    E2EState,
    RawAMQP,
    Span,
    body_age_ns,
    broker_cpu_s,
    child_main,
    consume_workload,
    deadline,
    e2e_workload,
    latency_fields,
    run_loop,
    stamped_body,
    unique_name,
    wait_event,
    wait_queue_async,
)

CLIENT = "aio_pika"


def _message(body: bytes) -> Any:
    from aio_pika import DeliveryMode, Message

    return Message(body, content_type="application/json",
                   delivery_mode=DeliveryMode.PERSISTENT if PERSISTENT else DeliveryMode.NOT_PERSISTENT)


async def _publish(q: str, n: int, workload: str, admin: RawAMQP, dl: float) -> dict[str, Any]:
    import aio_pika
    from aio_pika import DeliveryMode, Message

    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel(publisher_confirms=(workload != "publish"))
    ex = ch.default_exchange
    perf = time.perf_counter
    done = 0
    lat: list[float] = []
    extra: dict[str, Any] = {}
    nonpersistent = DeliveryMode.PERSISTENT if PERSISTENT else DeliveryMode.NOT_PERSISTENT
    sp = Span().start()
    if workload == "publish":
        for i in range(n):
            await ex.publish(Message(BODY, content_type="application/json", delivery_mode=nonpersistent),
                             routing_key=q)
            done += 1
            if (i & 255) == 0 and perf() > dl:
                break
        extra["queue_count"] = await wait_queue_async(admin, q, done, dl)
        done = min(done, extra["queue_count"])
    elif workload == "publish-confirm":
        for b in range(0, n, BATCH):
            await asyncio.gather(*[
                ex.publish(Message(BODY, content_type="application/json", delivery_mode=nonpersistent),
                           routing_key=q)
                for _ in range(b, min(n, b + BATCH))])
            done = min(n, b + BATCH)
            if perf() > dl:
                break
    else:
        for _ in range(n):
            t = perf()
            await ex.publish(Message(BODY, content_type="application/json", delivery_mode=nonpersistent),
                             routing_key=q)
            lat.append(perf() - t)
            done += 1
            if perf() > dl:
                break
        extra.update(latency_fields(lat))
    sp.stop()
    await conn.close()
    return {"count": done, **sp.fields(), **extra, "capped": done < n}


def _publish_workload(a: argparse.Namespace) -> dict[str, Any]:
    admin = RawAMQP()
    q = unique_name(CLIENT, a.workload)
    admin.declare(q)
    try:
        dl = deadline()
        return dict(run_loop(lambda: _publish(q, a.messages, a.workload, admin, dl), a.loop))
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

    async def on_msg(m: Any) -> None:
        await m.ack()
        cnt[0] += 1
        if cnt[0] >= n:
            done.set()

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
        await ex.publish(_message(stamped_body(now_ns())), routing_key=q)
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

    async def on_msg(m: Any) -> None:
        st.lat.append(body_age_ns(m.body, now_ns()) * 1e-9)
        await m.ack()
        st.count += 1
        if st.count >= n:
            st.t_end = time.time()
            done.set()

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
    "publish": _publish_workload,
    "publish-confirm": _publish_workload,
    "publish-confirm-each": _publish_workload,
    "consume": consume,
    "e2e": e2e,
    "e2e-consumer": e2e_consumer,
}

if __name__ == "__main__":
    child_main(CLIENT, RUNNERS)
