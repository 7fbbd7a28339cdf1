"""Client CPU per ``await client.publish_event(e)`` on the live broker (``time.process_time`` per
message, user and system time apart), without and with publisher confirms (``asyncio.gather`` over
windows of 1000, the aio-pika idiom), and the compiled plan's ``write`` alone into a bytearray. The
events are built before the clock starts (their construction is not counted). Uses a queue of its
own per round (uuid-suffixed, deleted after the round); median of ``--rounds``.

    python benchmarks/micro/publish_cpu.py [--messages 30000] [--rounds 3] [--loop uvloop|asyncio]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/: _common, _mmate_event

from _common import HOST, PASSWORD, PORT, USER, RawAMQP, run_loop  # noqa: E402
from _mmate_event import new_event  # noqa: E402

from mmate_fast.client import Client  # noqa: E402


async def _publish(q: str, n: int, confirms: bool) -> tuple[float, float, float, Any]:
    """(total, user, system) µs of CPU per publish, and the publisher's plan."""
    url = f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/"
    async with Client(url, service_name=f"bench-{uuid.uuid4().hex[:6]}", declare_topology=False,
                      publisher_confirms=confirms) as client:
        pe = client.publish_event
        events = [new_event(i) for i in range(n)]
        c0, o0 = time.process_time(), os.times()
        if confirms:
            for k in range(0, n, 1000):
                await asyncio.gather(*[pe(e, exchange="", routing_key=q, persistent=False)
                                       for e in events[k:k + 1000]])
        else:
            for e in events:
                await pe(e, exchange="", routing_key=q, persistent=False)
        c1, o1 = time.process_time(), os.times()
        plan = next(iter(client.publisher._plans.values()))
    return 1e6 * (c1 - c0) / n, 1e6 * (o1.user - o0.user) / n, 1e6 * (o1.system - o0.system) / n, plan


def _plan_write(plan: Any, n: int) -> float:
    events = [new_event(i) for i in range(n)]
    out = bytearray()
    c0 = time.process_time()
    for e in events:
        plan.write(out, 1, 131072, e)
        if len(out) > 1 << 20:
            out = bytearray()
    return 1e6 * (time.process_time() - c0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=30_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    a = ap.parse_args()
    admin = RawAMQP()
    try:
        plan = None
        for confirms in (False, True):
            rows = []
            for _ in range(a.rounds):
                q = f"bench-publish-cpu-{uuid.uuid4().hex[:8]}"
                admin.declare(q)
                try:
                    *r, plan = run_loop(lambda c=confirms, q=q: _publish(q, a.messages, c), a.loop)
                finally:
                    admin.delete(q)
                rows.append(r)
            tot, usr, sys_ = (statistics.median(col) for col in zip(*rows, strict=True))
            label = "confirms, gather over 1000" if confirms else "no confirms"
            print(f"publish_event, {label:28s} {tot:6.2f} µs CPU/msg (user {usr:.2f}, system {sys_:.2f})")
        w = statistics.median(_plan_write(plan, a.messages) for _ in range(a.rounds))
        print(f"PublishPlan.write alone{'':20s} {w:6.2f} µs CPU/msg")
        print(f"load: {os.getloadavg()[0]:.1f}")
    finally:
        admin.close()


if __name__ == "__main__":
    main()
