"""Our client, mmate_fast.amqp, at the transport level: publish_nowait with pre-encoded properties
(drain every 1000), windows of 1000 confirms, awaited publish per message, and a plain consumer
callback acking each delivery (the client coalesces the acks into one write per loop turn).
Run as ``python benchmarks/_mmate.py WORKLOAD --messages N``; prints one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from _common import (
    BATCH,
    BODY,
    HOST,
    PASSWORD,
    PERSISTENT,
    PORT,
    PREFETCH,
    PROPS,
    USER,
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

CLIENT = "mmate_fast"
URL = f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/?heartbeat=60"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from anywhere: import the checkout's mmate_fast (PYTHONPATH wins)
    sys.path.append(_ROOT)


async def _connect() -> Any:
    from mmate_fast.amqp import connect

    return await connect(URL, timeout=10)


def _props() -> bytes:
    """Plain pre-encoded properties; at the mmate level (BENCH_BODY=mmate) the envelope's own."""
    if PROPS is not None:
        return PROPS
    from mmate_fast.amqp import BasicProperties, encode_properties

    return encode_properties(BasicProperties(content_type="application/json",
                                             delivery_mode=2 if PERSISTENT else 1))


async def _publish(q: str, n: int, workload: str, admin: RawAMQP, dl: float) -> dict[str, Any]:
    conn = await _connect()
    ch = await conn.channel(publisher_confirms=(workload != "publish"))
    props = _props()
    perf = time.perf_counter
    done = 0
    lat: list[float] = []
    extra: dict[str, Any] = {}
    pub = ch.publish_nowait
    sp = Span().start()
    if workload == "publish":
        while done < n and perf() < dl:
            for _ in range(min(BATCH, n - done)):
                pub(BODY, "", q, props)
            done += min(BATCH, n - done)
            await ch.drain()
        extra["queue_count"] = await wait_queue_async(admin, q, done, dl)
        done = min(done, extra["queue_count"])
    elif workload == "publish-confirm":
        while done < n and perf() < dl:
            k = min(BATCH, n - done)
            for _ in range(k):
                pub(BODY, "", q, props)
            await ch.wait_for_confirms()
            done += k
    else:
        publish = ch.publish
        while done < n and perf() < dl:
            t = perf()
            await publish(BODY, "", q, props)
            lat.append(perf() - t)
            done += 1
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
    conn = await _connect()
    ch = await conn.channel()
    done = asyncio.Event()
    cnt = [0]
    ack = ch.basic_ack

    def on_msg(d: Any) -> None:
        ack(d.delivery_tag)
        c = cnt[0] = cnt[0] + 1
        if c >= n:
            done.set()

    await ch.basic_qos(prefetch_count=PREFETCH)
    sp = Span().start()
    await ch.basic_consume(q, on_msg)
    await wait_event(done, dl)
    sp.stop()
    await conn.close()
    return {"count": cnt[0], **sp.fields(), "capped": cnt[0] < n}


def consume(a: argparse.Namespace) -> dict[str, Any]:
    return consume_workload(CLIENT, a, _consume)


async def _produce(q: str, n: int, dl: float) -> dict[str, Any]:
    conn = await _connect()
    ch = await conn.channel(publisher_confirms=False)
    props = _props()
    pub = ch.publish_nowait
    now_ns = time.time_ns
    perf = time.perf_counter
    b0 = broker_cpu_s()
    c0 = time.process_time()
    t0 = time.time()
    sent = 0
    while sent < n and perf() < dl:
        k = min(BATCH, n - sent)
        for _ in range(k):
            pub(stamped_body(now_ns()), "", q, props)
        sent += k
        await ch.drain()
    cpu = time.process_time() - c0
    await conn.close()
    return {"t0": t0, "cpu_s": cpu, "sent": sent, "b0": b0}


def e2e(a: argparse.Namespace) -> dict[str, Any]:
    return e2e_workload(CLIENT, __file__, a, _produce)


async def _e2e_consumer(q: str, n: int) -> dict[str, Any]:
    conn = await _connect()
    ch = await conn.channel()
    await ch.basic_qos(prefetch_count=PREFETCH)
    st = E2EState(n)
    done = asyncio.Event()
    now_ns = time.time_ns
    ack = ch.basic_ack
    lat = st.lat

    def on_msg(d: Any) -> None:
        lat.append(body_age_ns(d.body, now_ns()) * 1e-9)
        ack(d.delivery_tag)
        st.count += 1
        if st.count >= n:
            st.t_end = time.time()
            done.set()

    await ch.basic_consume(q, on_msg)
    c0 = time.process_time()
    print("READY", flush=True)
    await wait_event(done, deadline())
    cpu = time.process_time() - c0
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
