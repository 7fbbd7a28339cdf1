"""What observability costs a consumer, without the broker's noise: the same Client on the in-memory
broker consumes N events with a plain handler, once per variant in turn, R rounds; prints the client
CPU per message (process time, so other load on the machine counts less than in a rate) of each
variant and its median per-round difference to ``plain``.

Variants: ``plain``; ``metrics`` (the ``MessageStats`` observer ``serve_observability()`` installs);
``interceptor`` (an interceptor with a no-op ``around_handler``: what the async interceptor pipeline
alone costs, a Task per delivery); ``tracing-noop`` (TracingInterceptor on OpenTelemetry's no-op
tracer); ``tracing-1pct`` / ``tracing-all`` (TracingInterceptor on the SDK, 1 % / every trace
sampled, spans through a BatchSpanProcessor into an exporter that drops them).

    python benchmarks/observer_overhead.py [--messages N] [--rounds R] [--variants plain,metrics,...]
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

VARIANTS = ("plain", "metrics", "interceptor", "tracing-noop", "tracing-1pct", "tracing-all")


@dataclass
class OverheadEvent(Event):
    n: int = 0


class _NoopAround(Interceptor):
    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        return await call_next()


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
        if variant == "metrics":
            c.add_observer(MessageStats())
        elif variant == "interceptor":
            c.use(_NoopAround())
        elif variant.startswith("tracing"):
            c.use(_tracing(variant))
        c0 = time.process_time()
        await c.start_consuming()
        await asyncio.wait_for(done.wait(), 600)
        return (time.process_time() - c0) / n * 1e6


async def _main(n: int, rounds: int, variants: list[str]) -> dict[str, Any]:
    runs: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            runs[v].append(await _consume(n, v, f"{v}-{r}"))
    out: dict[str, Any] = {"messages": n, "rounds": rounds,
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
    a = ap.parse_args()
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        ap.error(f"--variants takes {','.join(VARIANTS)} (got {bad})")
    import uvloop

    res = uvloop.run(_main(a.messages, a.rounds, variants))
    deltas = res.get("delta_vs_plain", {})
    print(f"consume on memory://, client CPU µs/msg, median of {a.rounds} rounds:")
    for v in variants:
        extra = f"   (+{deltas[v]:.2f} vs plain)" if v in deltas else ""
        print(f"  {v:<13} {res['us_per_msg'][v]:7.2f}{extra}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
