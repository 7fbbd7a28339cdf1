"""Messages from elsewhere, on memory:// and RabbitMQ: a compensation or stage message our engine's store
has never seen (a Go engine ran the failing stage, or another process with its own ``memory://`` store
did) is self-contained, as Go treats it — a consistent one runs and the store learns the instance from
it; an inconsistent one goes to ``dlq.{queue}`` with a reason that says what is wrong.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from mmate_fast._ext import load
from mmate_fast.client import Client
from mmate_fast.stageflow import FlowEngine, Workflow, _wire
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import Events, engine_for, flow_queues
from tests.behaviour.test_stageflow_bad_input import dead_letters, running_state, simple_flow, still_works
from tests.behaviour.test_stageflow_go import WORKFLOW_ID, go_payload, go_workflow, normal, vector
from tests.behaviour.test_stageflow_split import split_flow

_frames = load("frames")


async def publish_raw(flows: FlowEngine, number: int, queue: str) -> None:
    """Go's captured publish ``number`` (body and AMQP properties as they crossed the wire) to ``queue``."""
    body, sidecar = vector(number)
    props = sidecar["properties"]
    ch = await flows.client.connection.channel(publisher_confirms=True)
    try:
        await ch.publish(body, "", queue, _frames.BasicProperties(
            content_type=props["content_type"], delivery_mode=props["delivery_mode"],
            headers={k: v["v"] for k, v in props["headers"].items()}))
    finally:
        await ch.close()


def spy(flows: FlowEngine) -> tuple[list[tuple[str, Any]], set[str]]:
    """Record what the engine's client publishes: (queue, message) of the hops, and every message id."""
    sent: list[tuple[str, Any]] = []
    ids: set[str] = set()
    publish = flows.client.publish

    async def spying(message: Any, **options: Any) -> str:
        if options.get("exchange") == "":
            sent.append((options["routing_key"], message))
        message_id: str = await publish(message, **options)
        ids.add(message_id)
        return message_id

    flows.client.publish = spying
    return sent, ids


def ours(events: Events, ids: set[str], iid: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, payload) of the events of ``iid`` this engine published (the vectors' instance ids are
    fixed: another run on the same broker may publish events for them too)."""
    return [(t, p) for t, p, h in events.seen if p.get("instanceId") == iid and h.get("x-message-id") in ids]


def assert_go_events(events: Events, ids: set[str], flows: FlowEngine, iid: str, numbers: list[int]) -> None:
    got = ours(events, ids, iid)
    assert [t for t, _ in got] == [json.loads(vector(n)[0])["type"] for n in numbers]
    for (_, payload), number in zip(got, numbers, strict=True):
        go = json.loads(vector(number)[0])["payload"]
        assert normal(payload, flows.prefix) == normal(go, flows.prefix), number
        assert list(payload) == list(go), number


async def until(check: Any, timeout: float = 10.0) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_go_compensation_message_into_an_empty_store(url: str, names: Names) -> None:
    """Vector 26 (Go's compensation of ``validate`` after ``charge`` failed) into an engine that never saw
    the instance: ``validate`` is compensated, the WorkflowCompensatedEvent is vector 27's."""
    undone: list[str] = []
    wf = Workflow(WORKFLOW_ID, name="mmate-peer demo flow")
    wf.add_stage("validate", lambda ctx: {"validated": True},
                 compensate=lambda ctx, result: undone.append(result.stage_id))
    wf.add_stage("charge", lambda ctx: (_ for _ in ()).throw(RuntimeError("declined")))
    wf.add_stage("ship", lambda ctx: {"trackingNo": "TRK-1"})
    events = Events()
    async with engine_for(url, names, wf, events=events) as flows:
        iid = go_payload(26)["instanceId"]
        assert await flows.status(iid) is None
        _, ids = spy(flows)
        await publish_raw(flows, 26, flows.compensation_queue(wf))
        state = await flows.wait(iid, timeout=10)
        assert state.status == "compensated"
        # our event comes after our save (another run on the broker may end this instance id too)
        await until(lambda: len(ours(events, ids, iid)) == 1)
        assert undone == ["validate"]
        record = await flows.status(iid)
        assert record is not None and record.status == "compensated" and record.version == 4
        assert_go_events(events, ids, flows, iid, [27])


async def test_go_stage_hop_into_an_empty_store(url: str, names: Names) -> None:
    """Vector 30 (Go's hop to ``charge``, run 2) into an engine that never saw the instance: ``charge``
    and ``ship`` run, the hop to ``ship`` is vector 32 and the events are vectors 31, 33, 34."""
    charges = ["(the capture's failing first charge)"]
    wf = go_workflow(charges)
    events = Events()
    async with engine_for(url, names, wf, events=events) as flows:
        iid = go_payload(30)["instanceId"]
        assert await flows.status(iid) is None
        sent, ids = spy(flows)
        await publish_raw(flows, 30, flows.stage_queue(wf, 1))
        state = await flows.wait(iid, timeout=10)
        assert state.status == "completed"
        await until(lambda: len(ours(events, ids, iid)) == 3)  # ours (see above)
        assert charges[1:] == [iid]
        stored = await flows.state(iid)
        assert stored is not None and stored.global_data["charge.chargeId"] == f"ch_{iid[:8]}"
        [(queue, hop)] = sent
        assert queue == flows.stage_queue(wf, 2)
        _, _, out = flows.client.publisher.prepare(hop, exchange="", routing_key=queue)
        assert normal(json.loads(out.body)["payload"], flows.prefix) == normal(go_payload(32), flows.prefix)
        assert_go_events(events, ids, flows, iid, [31, 33, 34])


@pytest.mark.parametrize("fail_at", ["charge", "ship"])
async def test_compensation_by_an_engine_with_its_own_memory_store(url: str, names: Names, fail_at: str) -> None:
    """Two engines, each with its own memory:// store: A runs the stages, B only the compensation queue,
    so B has never seen the instance when its compensation messages arrive (one step, or a chain of two)."""
    ran: list[tuple[str, str]] = []
    wf_id = f"foreign-{names.queue('wf')}"
    prefix = f"{names.queue('sf')}."
    wf_a = split_flow(wf_id, ran, "a", fail_at=fail_at)
    wf_b = split_flow(wf_id, ran, "b", fail_at=fail_at)
    flow_queues(names, prefix, wf_a)
    async with Client(url, service_name=names.service()) as ca, Client(url, service_name=names.service()) as cb:
        a = FlowEngine(ca, prefix=prefix, store="memory://")
        b = FlowEngine(cb, prefix=prefix, store="memory://")
        try:
            await a.register(wf_a, compensation=False)
            await b.register(wf_b, stages=[], compensation=True)
            iid = await a.start(wf_a, {"orderId": "o-1"})
            state = await a.wait(iid, timeout=10)
            assert state.status == "compensated"
            if fail_at == "charge":
                assert ran == [("validate", "a"), ("charge", "a"), ("undo:validate", "b")]
            else:
                assert ran == [("validate", "a"), ("charge", "a"), ("ship", "a"), ("undo:charge", "b"),
                               ("undo:validate", "b")]
            record = await b.status(iid)
            assert record is not None and record.status == "compensated"
        finally:
            await a.close()
            await b.close()


async def test_inconsistent_compensation_messages_go_to_the_dlq(url: str, names: Names, conn: Any) -> None:
    """A compensation message for an instance the store does not know is judged on its own: what does
    not hold together is refused with the reason, the rest of the queue goes on."""
    wf = simple_flow(f"bt-flow-{names.queue('wf')}")
    async with engine_for(url, names, wf) as flows:
        state = running_state(wf, "99999999-2222-4333-8444-555555555555")
        state.status = "failed"
        done = _wire.StageResult("a", "completed", start_ns=state.start_ns, end_ns=state.start_ns)
        state.stage_results = [done]

        def comp(st: Any = state, **changes: Any) -> Any:
            msg = _wire.compensation_message(st, failed_stage_index=1, total=1, index=0, stage_to_compensate="a",
                                             original=done, original_error="boom", failure_ns=time.time_ns(),
                                             results=[])
            return dataclasses.replace(msg, **changes)

        still_running = dataclasses.replace(state, status="running")
        nothing_done = dataclasses.replace(state, stage_results=[_wire.StageResult("a", "failed")])
        bad = [
            comp(still_running),                   # state not failed
            comp(nothing_done),                    # the stage to compensate did not complete
            comp(stage_to_compensate="zz"),        # no such stage
            comp(failed_stage_index=2),            # the failed stage index is out of range
            comp(failed_stage_index=-1),
            comp(instance_id="88888888-2222-4333-8444-555555555555"),  # the state is another instance's
            comp(compensation_index=3),            # a step the chain does not have
        ]
        cq = flows.compensation_queue(wf)
        for msg in bad:
            await flows.client.publish(msg, exchange="", routing_key=cq)
        reasons = await dead_letters(conn, cq, len(bad))
        assert sorted(r for r, _ in reasons) == sorted([
            "flow-not-failed", "stage-not-completed", "unknown-stage", "stage-index", "stage-index",
            "flow-id-mismatch", "compensation-index"])
        assert all("99999999" in t or "88888888" in t for r, t in reasons if r != "unknown-stage")
        assert await flows.status(state.instance_id) is None  # nothing inconsistent was saved
        await still_works(flows, wf)
