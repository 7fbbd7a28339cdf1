"""What observability costs a consumer, without the broker's noise: the same Client on the in-memory
broker consumes N events with a plain handler, once per variant in turn, R rounds; prints the client
CPU per message (process time, so other load on the machine counts less than in a rate) of each
variant and its median per-round difference to ``plain``.

Variants: ``plain``; ``metrics`` (the ``MessageStats`` observer ``serve_observability()`` installs);
``interceptor`` (an interceptor with a no-op ``around_handler``: what the async interceptor pipeline
alone costs, a Task per delivery); ``tracing-noop`` (TracingInterceptor on OpenTelemetry's no-op
tracer); ``tracing-1pct`` / ``tracing-all`` (TracingInterceptor on the SDK, 1 % / every trace
sampled, spans through a BatchSpanProcessor into an exporter that drops them); ``fast-1pct`` /
``fast-all`` / ``fast-none`` (TracingObserver, the fast tracing path on the tracer hook, 1 % / every
/ no root sampled, same dropping SDK pipeline); ``traced-fast`` (``metrics`` + ``fast-1pct``: what the
``mmate_fast_traced_fast`` benchmark row runs).

``--workload publish`` measures the publishing side instead: N ``await publish_event`` to the
service queue on ``memory://`` with the variant installed (the interceptor variants go through the
publish interceptor pipeline).

    python benchmarks/observer_overhead.py [--workload consume|publish] [--messages N] [--rounds R]
                                           [--variants plain,metrics,...]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor
from mmate_fast.observability import MessageStats

VARIANTS = ("plain", "metrics", "interceptor", "tracing-noop", "tracing-1pct", "tracing-all",
            "fast-none", "fast-1pct", "fast-all", "traced-fast")


@dataclass
class OverheadEvent(Event):
    n: int = 0


class _NoopAround(Interceptor):
    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        return await call_next()


def _provider(sampler: Any = None) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class DropExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return provider


def _install(c: Client, variant: str) -> None:
    """Put ``variant``'s observability on ``c``."""
    if variant in ("metrics", "traced-fast"):
        c.add_observer(MessageStats())
    if variant == "interceptor":
        c.use(_NoopAround())
    elif variant.startswith("tracing"):
        c.use(_tracing(variant))
    elif variant in ("fast-none", "fast-1pct", "fast-all", "traced-fast"):
        from mmate_fast.observability import TracingObserver

        sample = {"fast-none": 0.0, "fast-all": 1.0}.get(variant, 0.01)
        TracingObserver(c, tracer_provider=_provider(), sample=sample)


def _tracing(variant: str) -> Any:
    from opentelemetry.trace import NoOpTracerProvider

    from mmate_fast.interceptors import TracingInterceptor

    if variant == "tracing-noop":
        return TracingInterceptor(NoOpTracerProvider())
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    class DropExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sampler = ParentBased(TraceIdRatioBased(0.01)) if variant == "tracing-1pct" else ALWAYS_ON
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return TracingInterceptor(provider)


async def _consume(n: int, variant: str, tag: str) -> float:
    async with Client(f"memory://observer-overhead-{tag}", service_name="overhead") as c:
        done = asyncio.Event()
        count = [0]

        def handle(e: OverheadEvent) -> None:
            count[0] += 1
            if count[0] == n:
                done.set()

        c.add_handler(OverheadEvent, handle)
        for i in range(n):
            await c.publish_event(OverheadEvent(n=i, aggregate_id="a"), exchange="",
                                  routing_key=c.service_queue)
        _install(c, variant)
        c0 = time.process_time()
        await c.start_consuming()
        await asyncio.wait_for(done.wait(), 600)
        return (time.process_time() - c0) / n * 1e6


async def _publish(n: int, variant: str, tag: str) -> float:
    async with Client(f"memory://observer-overhead-{tag}", service_name="overhead") as c:
        _install(c, variant)
        publish_event, queue = c.publish_event, c.service_queue
        events = [OverheadEvent(n=i, aggregate_id="a") for i in range(n)]
        c0 = time.process_time()
        for e in events:
            await publish_event(e, exchange="", routing_key=queue)
        return (time.process_time() - c0) / n * 1e6


async def _main(n: int, rounds: int, variants: list[str], workload: str = "consume") -> dict[str, Any]:
    runs: dict[str, list[float]] = {v: [] for v in variants}
    measure = _publish if workload == "publish" else _consume
    for r in range(rounds):
        for v in variants:
            runs[v].append(await measure(n, v, f"{v}-{r}"))
    out: dict[str, Any] = {"workload": workload, "messages": n, "rounds": rounds,
                           "us_per_msg": {v: statistics.median(x) for v, x in runs.items()}}
    if "plain" in runs:
        out["delta_vs_plain"] = {v: statistics.median(b - a for a, b in zip(runs["plain"], x, strict=True))
                                 for v, x in runs.items() if v != "plain"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", "-n", type=int, default=40_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", default="plain,metrics")
    ap.add_argument("--workload", choices=("consume", "publish"), default="consume")
    a = ap.parse_args()
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        ap.error(f"--variants takes {','.join(VARIANTS)} (got {bad})")
    import uvloop

    res = uvloop.run(_main(a.messages, a.rounds, variants, a.workload))
    deltas = res.get("delta_vs_plain", {})
    print(f"{a.workload} on memory://, client CPU µs/msg, median of {a.rounds} rounds:")
    for v in variants:
        extra = f"   (+{deltas[v]:.2f} vs plain)" if v in deltas else ""
        print(f"  {v:<13} {res['us_per_msg'][v]:7.2f}{extra}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
