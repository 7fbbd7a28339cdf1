"""Micro-benchmark of one StageFlow hop in this process, without broker or store I/O: decode the
incoming FlowMessageEnvelope body (envelope + strict wire decoder + state string), run a trivial
stage, apply its result (Go's transition, the StageCompletedEvent) and build + encode the next hop's
body. Prints hops/s and µs/hop (median of ``--rounds`` rounds of ``--hops`` hops).

    python benchmarks/micro/stageflow_hop.py [--hops 20000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from mmate_fast._ext import load
from mmate_fast.contracts import MessageKind, from_envelope
from mmate_fast.messaging.outgoing import build
from mmate_fast.stageflow import Workflow, _lifecycle, _wire
from mmate_fast.stageflow._hops import StageHandler, read_state
from mmate_fast.stageflow._runtime import Runtime
from mmate_fast.stageflow.store import open_store

_decode_envelope = load("envelope").decode_envelope


def first_hop_body(wf: Workflow) -> bytes:
    now = time.time_ns()
    state = _wire.WorkflowState(workflow_id=wf.id, instance_id="6ce1e1b3-b8c4-451c-9c2b-a5d23bc5c8cb",
                                status="running", start_ns=now, last_modified_ns=now,
                                global_data={"orderId": "order-2001", "amount": 99.95})
    hop = _wire.flow_message(state, stage_index=0, stage_name="validate",
                             next_queue=f"stageflow.{wf.id}.stage1",
                             payload={"orderId": "order-2001", "amount": 99.95})
    return build(hop, kind=MessageKind.MESSAGE).body


async def run(hops: int, rounds: int, events: str = "all") -> list[float]:
    wf = Workflow("bench-flow")
    wf.add_stage("validate", lambda ctx: {"validated": True})
    wf.add_stage("charge", lambda ctx: {"chargeId": "ch-1"})
    rt = Runtime(None, open_store("memory://"), prefix="stageflow.", worker="bench",
                 events=_lifecycle.event_types({"all": True, "none": False}.get(events, events)),
                 finished=lambda state: None)
    handler = StageHandler(rt, wf, idempotent=False)
    stage = wf.stages[0]
    body = first_hop_body(wf)
    per_round = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(hops):
            msg: Any = from_envelope(_decode_envelope(body))
            state = read_state(msg)
            outcome = await handler._run(stage, state)
            step = handler.step(state, [(0, outcome)], msg.payload)
            for event in step.events:  # the ones the engine built (it builds only the selected)
                build(event, kind=MessageKind.EVENT)
            for _queue, envelope in step.hops:
                build(envelope, kind=MessageKind.MESSAGE)
        per_round.append((time.perf_counter() - t0) / hops)
    return per_round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hops", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", choices=("all", "terminal", "none"), default="all",
                        help="FlowEngine(events=...): all builds the StageCompletedEvent, the others do not")
    args = parser.parse_args()
    per_hop = statistics.median(asyncio.run(run(args.hops, args.rounds, args.events)))
    print(f"stageflow hop (decode + trivial stage + events={args.events} + next hop encoded): "
          f"{1 / per_hop:,.0f} hops/s, {per_hop * 1e6:.1f} µs/hop")


if __name__ == "__main__":
    main()
