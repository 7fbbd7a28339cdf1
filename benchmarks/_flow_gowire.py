"""Our engine's exact messages for one benchmark flow, for the raw client's ``raw_gowire`` row.

The four publishes of one flow as ``FlowEngine`` (defaults: terminal events) sends them: the start
(``FlowMessageEnvelope`` to stage 0), the hops to stages 1 and 2, and the ``WorkflowCompletedEvent``
on ``mmate.events`` — each as (exchange, routing key, AMQP property bytes, body) built by the
engine's own code (``StageHandler._run`` + ``StageHandler.step``, ``outgoing.build``: Go's header
table and our envelope, persistent). A zero-cost client sending these bytes shows what the broker
alone needs per flow on Go's wire: the ceiling of the engine's rate on this machine.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

from _flow_common import INITIAL_DATA, STAGES


def instance_id(workflow_id: str) -> str:
    """The instance id every pre-encoded hop of run ``workflow_id`` carries (the raw client does not
    vary it; one per run, so that the starter's listener binds this run's events only)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, workflow_id))


def go_hops(workflow_id: str) -> list[tuple[str, str, bytes, bytes]]:
    """(exchange, routing key, properties, body) of the start, the two hops and the completed event."""
    import time

    from mmate_fast.contracts import MessageKind
    from mmate_fast.messaging import topology
    from mmate_fast.messaging.outgoing import build
    from mmate_fast.stageflow import Workflow, _wire
    from mmate_fast.stageflow._hops import StageHandler
    from mmate_fast.stageflow._lifecycle import TERMINAL_EVENTS
    from mmate_fast.stageflow._runtime import Runtime
    from mmate_fast.stageflow.store import open_store

    wf = Workflow(workflow_id)
    for stage, key, value in STAGES:
        wf.add_stage(stage, (lambda k, v: lambda ctx: {k: v})(key, value))
    rt = Runtime(None, open_store("memory://"), events=frozenset(TERMINAL_EVENTS),
                 prefix=_wire.DEFAULT_PREFIX, worker="raw@bench", finished=lambda s: None)
    handler = StageHandler(rt, wf)
    now = time.time_ns()
    state = _wire.WorkflowState(workflow_id=wf.id, instance_id=instance_id(workflow_id), status="running",
                                stage_results=[], global_data=dict(INITIAL_DATA), start_ns=now, version=1)
    state.last_modified_ns = now
    first = _wire.flow_message(state, stage_index=0, stage_name=STAGES[0][0],
                               next_queue=rt.stage_queue(wf.id, 1), payload=dict(INITIAL_DATA),
                               payload_type=_wire.PAYLOAD_TYPE_INITIAL)
    hops: list[tuple[str, str, Any]] = [("", rt.stage_queue(wf.id, 0), first)]
    msg = first
    for i in range(len(STAGES)):
        st = _wire.decode_state(msg.serialized_workflow_state)
        outcome = asyncio.run(handler._run(wf.stages[i], st))
        step = handler.step(st, [(i, outcome)], msg.payload)
        if step.hops:
            queue, msg = step.hops[0]
            hops.append(("", queue, msg))
        for event in step.events:
            rk = topology.event_routing_key(event.aggregate_id, type(event).__name__)
            hops.append((topology.EVENTS, rk, event))
    out = []
    for exchange, rk, m in hops:
        kind = MessageKind.EVENT if exchange else None
        o = build(m, persistent=True, kind=kind)
        out.append((exchange, rk, bytes(o.properties), bytes(o.body)))
    return out
