"""Bad StageFlow input, on RabbitMQ and memory://: each bad message ends in ``dlq.{queue}`` with a
reason, the worker lives on, and the next flow completes. A failed required stage's message is kept
in its DLQ (Go drops it) after the compensation was sent."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.contracts import Event, from_envelope
from mmate_fast.stageflow import FlowEngine, Workflow, _wire
from tests.behaviour.behaviour_helpers import drain_queue
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import engine_for


@dataclasses.dataclass
class SomethingElseHappened(Event):
    what: str = ""


def simple_flow(wf_id: str) -> Workflow:
    wf = Workflow(wf_id)
    wf.add_stage("a", lambda ctx: {"a": 1}, compensate=lambda ctx: None)
    wf.add_stage("b", lambda ctx: {"b": 2})
    return wf


def running_state(wf: Workflow, instance_id: str = "11111111-2222-4333-8444-555555555555") -> Any:
    now = time.time_ns()
    return _wire.WorkflowState(workflow_id=wf.id, instance_id=instance_id, status="running", start_ns=now,
                               last_modified_ns=now, global_data={"x": 1})


async def kept_in_dlq(conn: Any, queue: str, expect: int, timeout: float = 10.0) -> list[Any]:
    """The messages of ``dlq.{queue}`` (declared on its first failure: waited for)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got: list[Any] = []
    while len(got) < expect and loop.time() < deadline:
        ch = await conn.channel()
        try:
            got.extend(await drain_queue(ch, f"dlq.{queue}", timeout=deadline - loop.time(), expect=expect - len(got)))
        except errors.NotFoundError:
            await asyncio.sleep(0.02)
        finally:
            if ch.is_open:
                await ch.close()
    return got


async def dead_letters(conn: Any, queue: str, expect: int) -> list[tuple[str, str]]:
    """(reason, error text) of the messages in ``dlq.{queue}``."""
    got = await kept_in_dlq(conn, queue, expect)
    return [(d.properties.headers["x-mmate-reason"], d.properties.headers["x-mmate-error"]) for d in got]


async def still_works(flows: FlowEngine, wf: Workflow) -> None:
    state = await flows.wait(await flows.start(wf, {"n": 1}), timeout=10)
    assert state.status == "completed" and state.global_data["b.b"] == 2


async def test_bad_stage_messages_go_to_the_dlq_with_a_reason(url: str, names: Names, conn: Any) -> None:
    wf = simple_flow(f"bt-flow-{names.queue('wf')}")
    async with engine_for(url, names, wf) as flows:
        client = flows.client
        q0 = flows.stage_queue(wf, 0)
        good = running_state(wf)

        def hop(**changes: Any) -> Any:
            msg = _wire.flow_message(good, stage_index=0, stage_name="a", next_queue=flows.stage_queue(wf, 1),
                                     payload={"x": 1})
            return dataclasses.replace(msg, **changes)

        bad = [
            hop(serialized_workflow_state='{"workflowId": 5'),             # corrupt state string
            hop(workflow_id="some-other-flow"),                              # unknown workflow
            hop(current_stage_index=7),                                      # index out of range
            hop(current_stage_index=1),                                      # index not this queue's
            _wire.compensation_message(good, failed_stage_index=1, total=1, index=0, stage_to_compensate="a",
                                       original=_wire.StageResult("a", "completed"), original_error="x",
                                       failure_ns=time.time_ns(), results=[]),  # wrong envelope for the queue
            SomethingElseHappened(what="not a flow message"),                # not a StageFlow message at all
        ]
        for msg in bad:
            await client.publish(msg, exchange="", routing_key=q0)
        reasons = await dead_letters(conn, q0, len(bad))  # the DLQ moves finish in any order
        assert sorted(r for r, _ in reasons) == sorted(["contract-error", "unknown-workflow", "stage-index",
                                                        "stage-index", "wrong-message-type", "unknown-type"])
        text = {r: t for r, t in reasons}
        assert "serializedWorkflowState" in text["contract-error"]  # the strict decoder names the key
        assert "some-other-flow" in text["unknown-workflow"]
        assert {"out of range" in t for r, t in reasons if r == "stage-index"} == {True, False}
        await still_works(flows, wf)


async def test_garbage_bytes_on_a_stage_queue(url: str, names: Names, conn: Any) -> None:
    wf = simple_flow(f"bt-flow-{names.queue('wf')}")
    async with engine_for(url, names, wf) as flows:
        q0 = flows.stage_queue(wf, 0)
        ch = await conn.channel()
        try:
            await ch.publish(b"\x00not json", "", q0)
            await ch.publish(b'{"type":"FlowMessageEnvelope","id":"1","timestamp":"2026-01-01T00:00:00Z",'
                             b'"payload":{"currentStageIndex":"zero"}}', "", q0)
        finally:
            await ch.close()
        reasons = dict(await dead_letters(conn, q0, 2))
        assert sorted(reasons) == ["contract-error", "not-json"]
        assert "FlowMessageEnvelope" in reasons["contract-error"]
        await still_works(flows, wf)


@pytest.mark.parametrize("idempotent", [True, False], ids=["claims", "no-claims"])
async def test_failed_required_stage_message_is_kept_in_its_dlq(url: str, names: Names, conn: Any,
                                                                 idempotent: bool, flow_store: str) -> None:
    wf = Workflow(f"bt-flow-{names.queue('wf')}")
    undone: list[str] = []
    wf.add_stage("a", lambda ctx: None, compensate=lambda ctx: undone.append("a"))
    wf.add_stage("b", lambda ctx: (_ for _ in ()).throw(RuntimeError("b is broken")))
    async with engine_for(url, names, wf, idempotent=idempotent, store=flow_store) as flows:
        iid = await flows.start(wf, {})
        state = await flows.wait(iid, timeout=10)
        assert state.status == "compensated" and undone == ["a"]
        q1 = flows.stage_queue(wf, 1)
        [kept] = await kept_in_dlq(conn, q1, 1)
        headers = kept.properties.headers
        assert headers["x-mmate-reason"] == "stage-failed" and "b is broken" in headers["x-mmate-error"]
        assert headers["x-mmate-original-queue"] == q1
        original = from_envelope(load("envelope").decode_envelope(kept.body))
        assert original.instance_id == iid and original.current_stage_index == 1
