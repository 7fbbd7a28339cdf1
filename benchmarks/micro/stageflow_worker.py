"""Micro-benchmark of a StageFlow worker's stage hop through the whole consume path, on the in-memory
transport (no broker, no timers): stage messages of a 3-stage workflow are put on stage 1's queue
(bodies made by the engine's own code, one instance each) and a FlowEngine serving only stage 1 takes
each one: subscriber, decode, the memory store's claim, the stage, the next hop published to stage 2's
queue (confirmed), the save after it and the ack. ``--feed-only`` puts the messages there with nobody
consuming (the feed's own cost, to subtract).

    python benchmarks/micro/stageflow_worker.py [--hops 2000] [--rounds 5] [--events terminal|all]
    python benchmarks/micro/stageflow_worker.py --instructions   # callgrind: instructions per hop
    python benchmarks/micro/stageflow_worker.py --store sqlite [--instructions]   # a SQLite file store

``--instructions`` runs this script under callgrind with N and 2N hops (and the same with
``--feed-only``) and prints (Ir(2N) - Ir(N)) / N for both and their difference: the worker's
instructions per hop, independent of the machine's load.

``--store sqlite``: the engine's store is a fresh SQLite file (one process: no other process's commits
between its transactions); each instance's record is saved first, as the starter saves it, in both modes
(so the subtraction leaves the hop's own store calls: the stage's read, its claim, the save after it).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (ROOT, os.path.join(ROOT, "benchmarks")):
    if path not in sys.path:  # run from anywhere: import the checkout's mmate_fast
        sys.path.insert(0, path)

from mmate_fast.client import Client  # noqa: E402
from mmate_fast.contracts import MessageKind  # noqa: E402
from mmate_fast.messaging.outgoing import build  # noqa: E402
from mmate_fast.stageflow import FlowEngine, Workflow, _wire  # noqa: E402

#: the instance id in the template body, replaced per message (same length: a canonical UUID)
TEMPLATE_ID = "00000000-0000-4000-8000-000000000000"


def workflow() -> Workflow:
    wf = Workflow(f"micro-worker-{uuid.uuid4().hex[:8]}")
    wf.add_stage("validate", lambda ctx: {"validated": True})
    wf.add_stage("charge", lambda ctx: {"chargeId": "ch-1"})
    wf.add_stage("ship", lambda ctx: {"trackingId": "t-1"})
    return wf


#: the flows' start time: the records saved first and the messages' states agree on it, as a flow's
#: record and its messages do (a SQLite save after a hop by the row's number checks it)
START_NS = time.time_ns()


def stage1_state(wf: Workflow) -> _wire.WorkflowState:
    """The state a stage-1 message carries (instance ``TEMPLATE_ID``)."""
    now = START_NS
    state = _wire.WorkflowState(workflow_id=wf.id, instance_id=TEMPLATE_ID, status="running",
                                start_ns=now, last_modified_ns=now, version=2,
                                global_data={"orderId": "order-2001", "amount": 99.95, "validate.validated": True})
    state.stage_results.append(_wire.StageResult("validate", "completed", data={"validated": True},
                                                 start_ns=now, end_ns=now, duration_ns=1))
    return state


def stage1_message(engine: FlowEngine, wf: Workflow) -> tuple[bytes, object]:
    """Body and properties of a stage-1 message as the engine sends it (instance ``TEMPLATE_ID``)."""
    state = stage1_state(wf)
    hop = _wire.flow_message(state, stage_index=1, stage_name="charge",
                             next_queue=engine.stage_queue(wf, 2),
                             payload={"orderId": "order-2001", "amount": 99.95})
    out = build(hop, kind=MessageKind.MESSAGE, persistent=True)
    return out.body, out.properties


async def run(hops: int, rounds: int, feed_only: bool, events: str = "terminal",
              store: str = "memory") -> list[float]:
    """CPU seconds per hop of each round (the last round's count is what callgrind compares)."""
    tmp = tempfile.mkdtemp(prefix="micro-worker-") if store == "sqlite" else None
    try:
        return await _run(hops, rounds, feed_only, events, tmp)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


async def _run(hops: int, rounds: int, feed_only: bool, events: str, tmp: str | None) -> list[float]:
    per_round = []
    store_url = "memory://" if tmp is None else f"sqlite:///{os.path.join(tmp, 'flows.db')}"
    async with Client(f"memory://micro-{uuid.uuid4().hex[:8]}", service_name=f"micro-{uuid.uuid4().hex[:6]}") as client:
        engine = FlowEngine(client, store=store_url, events=True if events == "all" else events, concurrency=10)
        wf = workflow()
        await engine.register(wf, serve=not feed_only, stages=[1], compensation=False)
        if feed_only:
            await engine.register(wf, serve=False)
        queue = engine.stage_queue(wf, 1)
        body, props = stage1_message(engine, wf)
        ch = await client.connection.channel()
        subs = engine._subscriptions
        template = TEMPLATE_ID.encode()
        n = 0
        for _ in range(rounds):
            bodies = [body.replace(template, str(uuid.UUID(int=n + i)).encode()) for i in range(hops)]
            if tmp is not None:  # the records the starter saved (in both modes: subtracted)
                state = stage1_state(wf)
                for i in range(n, n + hops):  # queued, committed in one transaction with the last
                    state.instance_id = str(uuid.UUID(int=i))
                    await engine._rt.save(state, wait=i == n + hops - 1)
            n += hops
            c0 = time.process_time()
            for b in bodies:
                ch.publish_nowait(b, "", queue, props)
            if feed_only:
                await asyncio.sleep(0)
            else:
                while sum(s.stats.acked for s in subs) < n:
                    await asyncio.sleep(0)
            per_round.append((time.process_time() - c0) / hops)
        await ch.close()
        await engine.close()
    return per_round


def instructions(hops: int, events: str, store: str = "memory") -> None:
    from _callgrind import callgrind_total

    script = os.path.abspath(__file__)
    per: dict[str, float] = {}
    for mode in ("hop", "feed"):
        extra = ("--feed-only",) if mode == "feed" else ()
        common = ("--events", events, "--store", store, *extra)
        one = callgrind_total(script, "--hops", str(hops), "--rounds", "1", *common)
        two = callgrind_total(script, "--hops", str(hops), "--rounds", "2", *common)
        per[mode] = (two - one) / hops
        print(f"{mode}: {per[mode]:,.0f} Ir per message ({hops} vs {2 * hops} messages)")
    print(f"stageflow worker hop (events={events}, store={store}): {per['hop'] - per['feed']:,.0f} "
          "instructions per hop "
          "(hop - feed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--feed-only", action="store_true")
    parser.add_argument("--events", choices=("terminal", "all"), default="terminal",
                        help="FlowEngine(events=...): all adds a StageCompletedEvent to every hop")
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory",
                        help="the engine's store: memory:// (default) or a fresh SQLite file")
    parser.add_argument("--instructions", action="store_true", help="callgrind: instructions per hop")
    args = parser.parse_args()
    if args.instructions:
        instructions(args.hops, args.events, args.store)
        return
    per_hop = statistics.median(asyncio.run(run(args.hops, args.rounds, args.feed_only, args.events,
                                                args.store)))
    what = "feed only" if args.feed_only else f"stageflow worker hop ({args.store}, whole consume path)"
    print(f"{what}: {per_hop * 1e6:.1f} µs CPU/hop, {1 / per_hop:,.0f} hops/s")


if __name__ == "__main__":
    main()
