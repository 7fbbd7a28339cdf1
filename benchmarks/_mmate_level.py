"""Our client at the Mmate level: typed events through ``mmate_fast.client.Client``.

publish: a new ``OrderCreatedEvent`` per message, ``await client.publish_event(evt, exchange="",
routing_key=q, persistent=False)`` (envelope, headers and properties built and encoded per message;
no confirms, so the await only suspends when the write buffer is full); timed until the queue holds
all N. consume: the queue pre-filled with N real envelopes (_common.BODY under BENCH_BODY=mmate),
``client.subscribe(q, prefetch=1000, declare=False)`` with a plain handler that counts (the
Subscription decodes, builds the dataclass, dispatches and acks). e2e: producer publishes as above
with ``sent_at_ns`` set per event, a consumer process handles them; latency from that field.
publish-confirm: the Client with publisher confirms; the default row publishes the whole stream of
new events with ``await client.publish_batch(events)``; ``BENCH_MMATE_VARIANT=gather``: the aio-pika
idiom, ``asyncio.gather`` over windows of 1000 ``client.publish_event`` calls; ``concurrent``: 64
tasks, each awaiting its ``publish_event`` calls one by one. Every publish is confirmed before the
clock stops, and the queue must hold all N. Under BENCH_PERSISTENT=1 the events are persistent
(into a durable queue), transient otherwise.
Run as ``BENCH_BODY=mmate python benchmarks/_mmate_level.py WORKLOAD --messages N``.

``BENCH_MMATE_VARIANT`` (set by run.py --confirms / --no-recovery / --observability): ``confirms`` —
the Client with publisher_confirms=True, each ``await publish_event`` returns once the broker
confirmed it; ``confirms_batch`` — the same Client, ``await client.publish_batch(events)`` per 1000
(pipelined, confirmed per window); ``norecovery`` — Client(recovery=False), everything else as the
default; ``observed`` — observability on: a TracingInterceptor on an OpenTelemetry SDK TracerProvider
(every message sampled, spans through a BatchSpanProcessor into an exporter that drops them: all the
tracing work but the network), ``client.serve_observability(port=0)`` (Prometheus metrics per
message type with latency histograms, health checks, the HTTP endpoints) and a thread that GETs
``/metrics`` and ``/health/ready`` once per second during the run; ``observed_sampled`` — the same
with 1 % of the traces sampled (ParentBased(TraceIdRatioBased(0.01))); ``metrics`` — the same without
tracing; ``traced_fast`` — the metrics variant plus ``TracingObserver(client, sample=0.01)`` (the
fast tracing path: head sampling before OpenTelemetry, on the tracer hook; sampled spans through a
BatchSpanProcessor into the same dropping exporter). ``channels4`` (run.py --publish-options):
Client(publish_channels=4), publishes spread round-robin over 4 channels; ``lean``:
Client(wire_profile="lean"), the same body and properties without the AMQP header table.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from _common import (
    HOST,
    PASSWORD,
    PERSISTENT,
    PORT,
    PREFETCH,
    USER,
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
from _mmate_event import OrderCreatedEvent, new_event

CLIENT = "mmate_fast"
VARIANT = os.environ.get("BENCH_MMATE_VARIANT", "")
#: the publish-confirm workload runs (set by main): the Client in publisher-confirm mode
CONFIRMED = sys.argv[1:2] == ["publish-confirm"]
#: concurrent publishers of the ``concurrent`` publish-confirm row
PUBLISHERS = 64
URL = f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/?heartbeat=60"


def _drop_provider(sampler: Any = None) -> Any:
    """An SDK TracerProvider whose spans go through a BatchSpanProcessor into an exporter that drops
    them (all the tracing work but the network)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class DropExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return provider


def _tracing() -> Any:
    """A TracingInterceptor on an SDK TracerProvider sampling everything (1 % for observed_sampled),
    exporting to nowhere."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    from mmate_fast.interceptors import TracingInterceptor

    sampled = VARIANT == "observed_sampled"
    return TracingInterceptor(_drop_provider(ParentBased(TraceIdRatioBased(0.01)) if sampled else ALWAYS_ON))


def _client() -> Any:
    """A Client as a service would create it (no topology declared: the bench queue is ours)."""
    from mmate_fast.client import Client

    return Client(URL, service_name=f"bench-{time.time_ns()}",
                  publisher_confirms=VARIANT in ("confirms", "confirms_batch") or CONFIRMED,
                  recovery=VARIANT != "norecovery", declare_topology=False,
                  publish_channels=4 if VARIANT == "channels4" else 1,
                  wire_profile="lean" if VARIANT == "lean" else "go",
                  interceptors=[_tracing()] if VARIANT in ("observed", "observed_sampled") else [])


class _Scraper(threading.Thread):
    """GET /metrics and /health/ready once per second (as Prometheus and a readiness probe would)."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.scrapes = 0
        self.errors = 0

    def run(self) -> None:
        while not self.stop.wait(1.0):
            for path in ("/metrics", "/health/ready"):
                try:
                    with urllib.request.urlopen(self.base + path, timeout=10) as r:
                        r.read()
                    self.scrapes += 1
                except OSError:
                    self.errors += 1


_SCRAPES: dict[str, int] = {}


@contextlib.asynccontextmanager
async def _open() -> AsyncIterator[Any]:
    """The connected client; for the observed variants with its endpoints served and scraped."""
    async with _client() as client:
        if VARIANT not in ("observed", "observed_sampled", "metrics", "traced_fast"):
            yield client
            return
        if VARIANT == "traced_fast":
            from mmate_fast.observability import TracingObserver

            TracingObserver(client, tracer_provider=_drop_provider(), sample=0.01)
        obs = await client.serve_observability(port=0)
        scraper = _Scraper(obs.url)
        scraper.start()
        try:
            yield client
        finally:
            scraper.stop.set()
            await asyncio.to_thread(scraper.join, 15)
            _SCRAPES.update(scrapes=scraper.scrapes, scrape_errors=scraper.errors)


async def _publish(q: str, n: int, admin: RawAMQP, dl: float) -> dict[str, Any]:
    async with _open() as client:
        publish_event = client.publish_event
        perf = time.perf_counter
        done = 0
        sp = Span().start()
        while done < n and perf() < dl:
            if VARIANT == "confirms_batch":
                await client.publish_batch([new_event(i) for i in range(done, min(done + 1000, n))],
                                           exchange="", routing_key=q, persistent=PERSISTENT)
            else:
                for i in range(done, min(done + 1000, n)):
                    await publish_event(new_event(i), exchange="", routing_key=q, persistent=PERSISTENT)
            done = min(done + 1000, n)
        got = await wait_queue_async(admin, q, done, dl)
        sp.stop()
    return {"count": min(done, got), **sp.fields(), "queue_count": got, "capped": got < n, **_SCRAPES}


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


async def _publish_confirmed(q: str, n: int, dl: float) -> dict[str, Any]:
    """publish-confirm: every event confirmed by the broker before the run ends, three idioms."""
    async with _open() as client:
        opts = {"exchange": "", "routing_key": q, "persistent": PERSISTENT}
        perf = time.perf_counter
        sp = Span().start()
        if VARIANT == "gather":  # the aio-pika idiom: gather over windows of 1000 awaited publishes
            publish_event = client.publish_event
            done = 0
            while done < n and perf() < dl:
                k = min(1000, n - done)
                await asyncio.gather(*[publish_event(new_event(i), **opts) for i in range(done, done + k)])
                done += k
        elif VARIANT == "concurrent":  # PUBLISHERS tasks, each awaiting its publishes one by one
            publish_event = client.publish_event
            left = [n]

            async def publisher() -> int:
                mine = 0
                while left[0] > 0 and perf() < dl:
                    left[0] -= 1
                    await publish_event(new_event(left[0]), **opts)
                    mine += 1
                return mine

            done = sum(await asyncio.gather(*[publisher() for _ in range(PUBLISHERS)]))
        else:  # the batch API over the whole stream (pipelined, confirmed)
            events = (new_event(i) for i in range(n))
            done = len(await client.publish_batch(events, **opts))
        sp.stop()
    return {"count": done, **sp.fields(), "capped": done < n}


def publish_confirm(a: argparse.Namespace) -> dict[str, Any]:
    admin = RawAMQP()
    q = unique_name(CLIENT, a.workload)
    admin.declare(q)
    try:
        dl = deadline()
        res = dict(run_loop(lambda: _publish_confirmed(q, a.messages, dl), a.loop))
        res["queue_count"] = admin.count(q)
        if res["queue_count"] != res["count"]:
            raise RuntimeError(f"{res['count']} publishes confirmed but the queue holds {res['queue_count']}")
        return res
    finally:
        admin.delete(q)
        admin.close()


async def _consume(q: str, n: int, dl: float) -> dict[str, Any]:
    done = asyncio.Event()
    cnt = [0]

    def on_order(evt: OrderCreatedEvent) -> None:
        c = cnt[0] = cnt[0] + 1
        if c >= n:
            done.set()

    async with _open() as client:
        client.add_handler(OrderCreatedEvent, on_order)
        sp = Span().start()
        sub = await client.subscribe(q, prefetch=PREFETCH, declare=False)
        await wait_event(done, dl)
        sp.stop()
        stats = sub.stats
    return {"count": cnt[0], **sp.fields(), "acked": stats.acked, "rejected": stats.rejected,
            "capped": cnt[0] < n, **_SCRAPES}


def consume(a: argparse.Namespace) -> dict[str, Any]:
    return consume_workload(CLIENT, a, _consume)


async def _produce(q: str, n: int, dl: float) -> dict[str, Any]:
    async with _open() as client:
        publish_event = client.publish_event
        now_ns = time.time_ns
        perf = time.perf_counter
        b0 = broker_cpu_s()
        c0 = time.process_time()
        t0 = time.time()
        sent = 0
        while sent < n and perf() < dl:
            for i in range(sent, min(sent + 1000, n)):
                await publish_event(new_event(i, f"{now_ns():019d}"), exchange="", routing_key=q,
                                    persistent=PERSISTENT)
            sent = min(sent + 1000, n)
        cpu = time.process_time() - c0
    return {"t0": t0, "cpu_s": cpu, "sent": sent, "b0": b0}


def e2e(a: argparse.Namespace) -> dict[str, Any]:
    return e2e_workload(CLIENT, __file__, a, _produce)


async def _e2e_consumer(q: str, n: int) -> dict[str, Any]:
    st = E2EState(n)
    done = asyncio.Event()
    now_ns = time.time_ns
    lat = st.lat

    def on_order(evt: OrderCreatedEvent) -> None:
        lat.append((now_ns() - int(evt.sent_at_ns)) * 1e-9)
        st.count += 1
        if st.count >= n:
            st.t_end = time.time()
            done.set()

    async with _open() as client:
        client.add_handler(OrderCreatedEvent, on_order)
        await client.subscribe(q, prefetch=PREFETCH, declare=False)
        c0 = time.process_time()
        print("READY", flush=True)
        await wait_event(done, deadline())
        cpu = time.process_time() - c0
    return st.result(cpu)


def e2e_consumer(a: argparse.Namespace) -> dict[str, Any]:
    return dict(run_loop(lambda: _e2e_consumer(a.queue, a.messages), a.loop))


RUNNERS = {
    "publish": publish,
    "publish-confirm": publish_confirm,
    "consume": consume,
    "e2e": e2e,
    "e2e-consumer": e2e_consumer,
}

if __name__ == "__main__":
    child_main(CLIENT, RUNNERS)
