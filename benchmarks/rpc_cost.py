"""The rpc workload on a throw-away RabbitMQ node of its own: broker CPU per round trip that is ours.

    python benchmarks/rpc_cost.py [--messages N] [--repeat R] [--concurrency 1,64] [--only row,row]

Starts a node (tests/integration/broker_node.py, stopped at the end), points the rpc clients at it
(``BENCH_AMQP_PORT``) and runs ``run.py rpc``'s runner (_rpc_runner.py) unchanged: same rows, table
and JSON. On the shared broker on 5672 the "broker µs/rt" column counts every other session's traffic
too; here it is the broker's CPU for our round trips alone (plus the idle node's background, a few
µs per round trip at most), the figure to judge a change to what goes on the wire by. The node runs
with the schedulers' busy-waiting off (``+sbwt none``: an idle scheduler sleeps instead of spinning,
so the CPU counted is work, not spinning, whatever the rate; ``--busy-wait`` keeps the default). The
rates still share the machine's 2 cores with everyone.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from _cost_node import cost_node
    from _rpc_runner import DEFAULT_ONLY, ORDER
    from _rpc_runner import main as rpc_main

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", "-n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--concurrency", default="64")
    ap.add_argument("--only", default=",".join(DEFAULT_ONLY))
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--busy-wait", action="store_true", help="keep the schedulers' default busy-waiting")
    a = ap.parse_args(argv)
    only = [c.strip().replace("-", "_") for c in a.only.split(",") if c.strip()]
    concs = [int(c) for c in a.concurrency.split(",") if c.strip()]
    if any(c not in ORDER for c in only) or not concs or min(concs) < 1 or a.repeat < 1:
        ap.error(f"--only takes rows of {ORDER}; --concurrency positive integers; --repeat >= 1")
    with cost_node("rpccost", "rpc_cost", busy_wait=a.busy_wait):
        return rpc_main(a.messages, concs, a.repeat, only, a.loop, a.timeout)


if __name__ == "__main__":
    sys.exit(main())
