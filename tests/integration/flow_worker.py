"""A StageFlow worker process for tests/integration/test_stageflow_processes.py (run with subprocess).

The workflow is the issue's order flow, ``validate`` -> ``charge`` -> ``ship`` (dict context), each
stage returning one key. Every effect is one line appended to ``--effects`` (``O_APPEND`` writes of
one line are atomic across processes): ``begin {stage} {iid} {pid}`` when a stage starts,
``done {stage} {iid} {pid}`` when its effect is applied (after ``--sleep``), ``undo {stage} {iid}
{pid}`` when it is compensated. So a test counts how often each stage's effect was applied, and by
which process.

    python tests/integration/flow_worker.py --workflow ID --store sqlite:///PATH --effects FILE
        [--service NAME] [--stages 0,2 [--compensation]] [--fail charge] [--sleep charge=5] [--url AMQP_URL]

Prints ``READY`` once its stage queues are consumed; stops cleanly (closing the engine and the
Client: unacked stage messages go back to their queue) on SIGTERM or when stdin closes.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mmate_fast.client import Client  # noqa: E402
from mmate_fast.stageflow import FlowEngine, Workflow  # noqa: E402

STAGES = (("validate", "validated", True), ("charge", "chargeId", "CH-1"), ("ship", "trackingNo", "TRK-1"))


class StageFailed(Exception):
    """The failure a test asks for (``--fail STAGE``)."""


def effect(path: str, what: str, stage: str, ctx: Any) -> None:
    """Append one effect line (one write on an O_APPEND descriptor: atomic across processes)."""
    iid = ctx_instance(ctx)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{what} {stage} {iid} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def ctx_instance(ctx: Any) -> str:
    """The flow's order id: the tests start every flow with a unique ``orderId`` (the instance id is
    not part of a dict context)."""
    return str(ctx.get("orderId", "?")) if isinstance(ctx, dict) else "?"


def build(args: argparse.Namespace) -> Any:
    """The workflow as this worker runs it (tests build the starter's copy with the same function)."""
    wf = Workflow(args.workflow)
    sleeps = {k: float(v) for k, v in (s.split("=", 1) for s in args.sleep)}

    def stage(name: str, key: str, value: Any) -> Any:
        async def run(ctx: Any) -> dict[str, Any]:
            effect(args.effects, "begin", name, ctx)
            if name in sleeps:
                await asyncio.sleep(sleeps[name])
            if name == args.fail:
                raise StageFailed(f"{name} failed on purpose")
            effect(args.effects, "done", name, ctx)
            return {key: value}

        return run

    def compensation(name: str) -> Any:
        async def undo(ctx: Any) -> None:
            effect(args.effects, "undo", name, ctx)

        return undo

    for name, key, value in STAGES:
        wf.add_stage(name, stage(name, key, value), compensate=compensation(name))
    return wf


async def main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.readline() else None)
    wf = build(args)
    stages = [int(i) for i in args.stages.split(",")] if args.stages else None
    async with Client(args.url, service_name=args.service) as client:
        flows = FlowEngine(client, store=args.store, prefix=args.prefix)
        await flows.register(wf, serve=True, stages=stages,
                             compensation=True if args.compensation else None)
        print("READY", flush=True)
        await stop.wait()
        await flows.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workflow", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--effects", required=True)
    ap.add_argument("--service", default="flow-worker")
    ap.add_argument("--prefix", default="stageflow.")
    ap.add_argument("--stages", default="", help="comma list of stage indexes to serve (default: all)")
    ap.add_argument("--compensation", action="store_true",
                    help="serve the compensation queue too (implied when serving every stage)")
    ap.add_argument("--fail", default="", help="this stage raises")
    ap.add_argument("--sleep", action="append", default=[], help="STAGE=SECONDS: the stage sleeps first")
    ap.add_argument("--url", default=os.environ.get("MMATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    asyncio.run(main(ap.parse_args()))
