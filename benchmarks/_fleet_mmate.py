"""The fleet benchmark's service for ``mmate run _fleet_mmate:make --workers N --app-dir benchmarks``.

A Client on ``$BENCH_FLEET_SERVICE`` with prefetch ``$BENCH_FLEET_PREFETCH`` and one plain handler
for the benchmark event (_mmate_event.OrderCreatedEvent) that runs ``$BENCH_FLEET_HANDLER``
(_fleet_common.workload) and counts into the worker's tally.
"""
from __future__ import annotations

import os

from _fleet_common import DEFAULT_PREFETCH, tally_from_env, workload
from _mmate_event import OrderCreatedEvent

from mmate_fast.client import Client

AMQP_URL = os.environ.get("BENCH_FLEET_URL", "amqp://guest:guest@127.0.0.1:5672/")


def make() -> Client:
    client = Client(AMQP_URL, service_name=os.environ["BENCH_FLEET_SERVICE"],
                    prefetch=int(os.environ.get("BENCH_FLEET_PREFETCH", DEFAULT_PREFETCH)))
    body = workload(os.environ.get("BENCH_FLEET_HANDLER", "light"))
    tally = tally_from_env()
    from mmate_fast import _ext

    tally.extra["extensions"] = {"compiled": all(_ext.COMPILED.values()), "modules": dict(_ext.COMPILED)}
    hit = tally.hit

    @client.handler(OrderCreatedEvent)
    def handle(evt: OrderCreatedEvent) -> None:
        body()
        hit()

    return client
