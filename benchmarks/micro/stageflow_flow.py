"""Micro-benchmark of whole StageFlow flows in one process on the in-memory transport (no broker):
the engine's full path per flow (start, three stage hops through the messaging core, the memory
store, the lifecycle events selected by ``--events``, wait). Prints the process CPU per flow (the
engine's own cost; the rate is bound by it) for each ``--events`` choice, median of ``--rounds``.

``--starter``: the stages run on a second engine (its own Client and memory store, as a worker
process would), so the starting engine hears each flow's end through its wait listener and decodes
the terminal event (the benchmark's starter path), not through the local shortcut.
``--instructions``: callgrind's instruction count per flow instead of CPU (``--flows`` flows minus a
run of none, in fresh processes under valgrind; repeatable on a loaded machine; set
``PYTHONHASHSEED=0``).
``--part heard|start`` (with ``--instructions``): one piece of the starter alone, per flow: ``heard``
= ``Waiters._heard`` of a real WorkflowCompletedEvent body (as the worker's Client publishes it, a new
instance id each) with a wait registered for it; ``start`` = ``engine.start()`` on memory:// with
nobody serving the stage queue. Each minus the same process doing everything but that piece.

    python benchmarks/micro/stageflow_flow.py [--flows 2000] [--rounds 5] [--events all,terminal,none]
                                              [--starter] [--instructions] [--part heard|start]
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

import orjson

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:  # run from anywhere: import the checkout's mmate_fast
    sys.path.insert(0, ROOT)

from mmate_fast.client import Client  # noqa: E402
from mmate_fast.stageflow import FlowEngine, Workflow  # noqa: E402

CHOICES: dict[str, Any] = {"all": True, "terminal": "terminal", "none": False}


def workflow() -> Workflow:
    wf = Workflow(f"micro-flow-{uuid.uuid4().hex[:8]}")
    wf.add_stage("validate", lambda ctx: {"validated": True})
    wf.add_stage("charge", lambda ctx: {"chargeId": "ch-1"})
    wf.add_stage("ship", lambda ctx: {"trackingId": "t-1"})
    return wf


async def run(flows: int, rounds: int, events: Any, inflight: int, starter: bool = False) -> list[float]:
    """CPU seconds per flow of each round."""
    per_round = []
    name = uuid.uuid4().hex[:6]
    async with Client(f"memory://{name}", service_name=f"micro-{name}") as client, \
            Client(f"memory://{name}", service_name=f"micro-{name}-w") as worker_client:
        engine = FlowEngine(client, events=events)
        wf = workflow()
        worker = None
        if starter:  # the stages on another engine: the end is heard through the listener
            worker = FlowEngine(worker_client, events=events)
            await worker.register(wf)
            await engine.register(wf, serve=False)
        else:
            await engine.register(wf)
        data = {"orderId": "order-2001", "amount": 99.95}
        await engine.wait(await engine.start(wf, dict(data)), timeout=10)  # warm

        async def lane(left: list[int]) -> None:
            while left[0] > 0:
                left[0] -= 1
                state = await engine.wait(await engine.start(wf, dict(data)), timeout=30)
                assert state.status == "completed"

        for _ in range(rounds):
            left = [flows]
            c0 = time.process_time()
            await asyncio.gather(*(lane(left) for _ in range(inflight)))
            per_round.append((time.process_time() - c0) / max(flows, 1))
        await engine.close()
        if worker is not None:
            await worker.close()
    return per_round


async def event_body(events: Any = "terminal") -> bytes:
    """The body of a real WorkflowCompletedEvent, as a worker's Client publishes it (one flow run on
    memory:// with the stages on a second engine)."""
    from mmate_fast.stageflow import _waiting

    bodies: list[bytes] = []
    name = uuid.uuid4().hex[:6]
    heard = _waiting.Waiters._heard

    def keep(self: Any, body: Any) -> None:
        bodies.append(bytes(body))
        heard(self, body)

    _waiting.Waiters._heard = keep  # type: ignore[method-assign]
    try:
        async with Client(f"memory://{name}", service_name=f"micro-{name}") as client, \
                Client(f"memory://{name}", service_name=f"micro-{name}-w") as worker_client:
            engine, worker, wf = FlowEngine(client, events=events), FlowEngine(worker_client, events=events), workflow()
            await worker.register(wf)
            await engine.register(wf, serve=False)
            await engine.wait(await engine.start(wf, {"orderId": "order-2001", "amount": 99.95}), timeout=10)
            await engine.close()
            await worker.close()
    finally:
        _waiting.Waiters._heard = heard  # type: ignore[method-assign]
    return bodies[0]


async def run_part(part: str, flows: int, skip: bool) -> None:
    """One piece of the starter ``flows`` times (``skip``: everything around it, not the piece)."""
    if part == "heard":
        from mmate_fast.stageflow._ids import new_id
        from mmate_fast.stageflow._waiting import Waiters
        from mmate_fast.stageflow.store import open_store

        body = await event_body()
        old = orjson.loads(body)["payload"]["instanceId"].encode()
        ids = [new_id() for _ in range(flows)]
        bodies = [body.replace(old, iid.encode()) for iid in ids]
        waiters = Waiters(None, open_store("memory://"))
        loop = asyncio.get_running_loop()
        futures = []
        for iid in ids:
            fut = loop.create_future()
            waiters._futures[iid] = {fut}
            futures.append(fut)
        if not skip:
            heard = waiters._heard
            for b in bodies:
                heard(b)
            assert all(f.done() for f in futures)
        return
    name = uuid.uuid4().hex[:6]
    async with Client(f"memory://{name}", service_name=f"micro-{name}") as client:
        engine = FlowEngine(client, events="terminal")
        wf = workflow()
        await engine.register(wf, serve=False)
        data = {"orderId": "order-2001", "amount": 99.95}
        await engine.start(wf, dict(data))  # warm
        datas = [dict(data) for _ in range(flows)]
        if not skip:
            start = engine.start
            for d in datas:
                await start(wf, d)
        await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inflight", type=int, default=50)
    parser.add_argument("--events", default="all,terminal,none")
    parser.add_argument("--starter", action="store_true", help="stages on a second engine")
    parser.add_argument("--instructions", action="store_true", help="callgrind instructions per flow")
    parser.add_argument("--part", choices=["heard", "start"], help="one piece of the starter (instructions)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one run under callgrind (instructions mode)
        if args.part:
            asyncio.run(run_part(args.part, args.flows, args.skip))
        else:
            asyncio.run(run(args.flows, 1, CHOICES[args.events], args.inflight, args.starter))
        return
    if args.part:
        sys.path.insert(0, os.path.dirname(HERE))
        from _callgrind import callgrind_total
        extra = ["--child", "--part", args.part, "--flows", str(args.flows)]
        full = callgrind_total(__file__, *extra)
        base = callgrind_total(__file__, *extra, "--skip")
        print(f"stageflow starter part {args.part} (memory://): {(full - base) / args.flows:,.0f} instructions/flow")
        return
    for name in args.events.split(","):
        if args.instructions:
            sys.path.insert(0, os.path.dirname(HERE))
            from _callgrind import callgrind_total
            extra = ["--child", "--events", name, "--inflight", str(args.inflight)]
            extra += ["--starter"] if args.starter else []
            full = callgrind_total(__file__, "--flows", str(args.flows), *extra)
            base = callgrind_total(__file__, "--flows", "0", *extra)
            print(f"stageflow flow in-process (memory://, events={name}, starter={args.starter}): "
                  f"{(full - base) / args.flows:,.0f} instructions/flow")
            continue
        per_flow = statistics.median(asyncio.run(run(args.flows, args.rounds, CHOICES[name], args.inflight,
                                                     args.starter)))
        print(f"stageflow flow in-process (memory://, events={name}, starter={args.starter}): {per_flow * 1e6:,.0f} µs CPU/flow, "
              f"{1 / per_flow:,.0f} flows/s")


if __name__ == "__main__":
    main()
