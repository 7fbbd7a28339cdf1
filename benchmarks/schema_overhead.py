"""Publish rate with SchemaValidationInterceptor on vs off (same Client settings, same message).

    python benchmarks/schema_overhead.py [--url amqp://guest:guest@127.0.0.1:5672/] [-n 20000]

Prints msgs/s and this process's CPU time per message for: no interceptor, a no-op interceptor (the
pipeline's own cost), schema validation; and the ratios. Alternates the rows over several rounds and
keeps each row's best (the CPU figure is steadier than the rate on a busy machine).
"""
from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass, field

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.interceptors import SchemaValidationInterceptor
from mmate_fast.messaging.pipeline import Interceptor, PublishContext


@dataclass
class BenchOrderPlaced(Event):
    order_id: str = ""
    amount: float = 0.0
    items: list[str] = field(default_factory=list)


class _Noop(Interceptor):
    async def before_send(self, ctx: PublishContext) -> None:
        return None


async def rate(url: str, n: int, interceptors: list[Interceptor]) -> tuple[float, float]:
    """(messages per second, CPU microseconds per message) of one publish_batch of ``n``."""
    async with Client(url, service_name=f"bench-schema-{uuid.uuid4().hex[:6]}", declare_topology=True,
                      interceptors=interceptors) as c:
        msg = BenchOrderPlaced(order_id="o-1", amount=12.5, items=["a", "b"], aggregate_id="o-1")
        for _ in range(200):
            await c.publish_event(msg)
        t0, c0 = time.perf_counter(), time.process_time()
        await c.publish_batch([msg] * n)
        return n / (time.perf_counter() - t0), (time.process_time() - c0) / n * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="memory://bench-schema")
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rows = {"off": lambda: [], "noop": lambda: [_Noop()], "schema": lambda: [SchemaValidationInterceptor()]}
    best = dict.fromkeys(rows, 0.0)
    cpu = dict.fromkeys(rows, float("inf"))
    for _ in range(a.rounds):
        for name, make in rows.items():
            r, us = await rate(a.url, a.n, make())
            best[name], cpu[name] = max(best[name], r), min(cpu[name], us)
    for name in rows:
        print(f"{name:7s} {best[name]:10.0f} msg/s  {cpu[name]:6.1f} us CPU/msg")
    print(f"rate schema/off = {best['schema'] / best['off']:.2f}, "
          f"schema/noop = {best['schema'] / best['noop']:.2f}")
    print(f"CPU per message: schema adds {cpu['schema'] - cpu['off']:.1f} us over off, "
          f"{cpu['schema'] - cpu['noop']:.1f} us over noop")


if __name__ == "__main__":
    asyncio.run(main())
