"""The stageflow workload on a throw-away RabbitMQ node of its own: broker CPU per flow that is ours.

    python benchmarks/flow_cost.py [--flows N] [--repeat R] [--only raw,mmate_fast,aio_pika]
                                   [--prefetch P] [--inflight I]

Starts a node (tests/integration/broker_node.py, stopped at the end), points the flow clients at it
(``BENCH_AMQP_PORT``) and runs ``run.py stageflow``'s runner (_flow_runner.py) unchanged: same rows,
table and JSON. On the shared broker on 5672 the "broker µs/flow" column counts every other session's
traffic too; here it is the broker's CPU for our flows alone, the figure to judge a change to what
goes on the wire (or how it is acked and confirmed) by. Like rpc_cost.py the node runs with the
schedulers' busy-waiting off (``+sbwt none``; ``--busy-wait`` keeps the default), so the CPU counted
is work, not spinning. The rates still share the machine's 2 cores with everyone.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from _cost_node import cost_node
    from _flow_common import FLOW_PREFETCH, INFLIGHT
    from _flow_runner import ORDER
    from _flow_runner import main as flow_main

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", "-n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default="raw,mmate_fast,aio_pika")
    ap.add_argument("--prefetch", type=int, default=FLOW_PREFETCH)
    ap.add_argument("--inflight", type=int, default=INFLIGHT)
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--busy-wait", action="store_true", help="keep the schedulers' default busy-waiting")
    a = ap.parse_args(argv)
    only = [c.strip().replace("-", "_") for c in a.only.split(",") if c.strip()]
    if any(c not in ORDER for c in only) or a.repeat < 1 or min(a.prefetch, a.inflight) < 1:
        ap.error(f"--only takes rows of {ORDER}; --repeat/--prefetch/--inflight >= 1")
    with cost_node("flowcost", "flow_cost", busy_wait=a.busy_wait):
        return flow_main(a.flows, a.repeat, only, a.loop, a.timeout, a.prefetch, a.inflight)


if __name__ == "__main__":
    sys.exit(main())
