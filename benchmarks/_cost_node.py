"""The throw-away RabbitMQ node of rpc_cost.py and flow_cost.py: run.py's runners pointed at it, so
the broker CPU they report is for our traffic alone."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def cost_node(kind: str, label: str, *, busy_wait: bool) -> Iterator[Any]:
    """Start a node (tests/integration/broker_node.py), point the benchmark clients at it
    (``BENCH_AMQP_PORT``) and stop it at the end. Without ``busy_wait`` its schedulers sleep instead
    of spinning (``+sbwt none``), so the CPU counted is work, not spinning."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import broker_node

    if not busy_wait:  # read by rabbitmq-server (broker_node passes our environment on)
        os.environ["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "+sbwt none +sbwtdcpu none +sbwtdio none"
    node = broker_node.start(kind=kind)
    print(f"{label}: own node {node.node} on port {node.amqp_port} "
          f"(started in {node.startup_seconds:.1f} s)", file=sys.stderr, flush=True)
    os.environ["BENCH_AMQP_PORT"] = str(node.amqp_port)
    try:
        yield node
    finally:
        node.stop()
