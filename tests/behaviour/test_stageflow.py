"""StageFlow engine behaviour, on memory:// and RabbitMQ: happy path, failure and compensation in
reverse order, optional and skipped stages, timeout, retry, typed and dict contexts, lifecycle events
with Go's sequences, status/list through the store."""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pydantic
import pytest

from mmate_fast import errors
from mmate_fast.stageflow import StageRetry, Workflow
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import Events, engine_for


def three_stages(wf_id: str, calls: list[str], *, fail_at: str | None = None) -> Workflow:
    wf = Workflow(wf_id, name="demo flow")

    @wf.stage("validate")
    async def validate(ctx: dict[str, Any]) -> dict[str, Any]:
        calls.append("validate")
        assert ctx["orderId"] == "o-1"
        return {"validated": True}

    @validate.compensate
    async def undo_validate(ctx: dict[str, Any], result: Any) -> None:
        calls.append(f"undo:validate:{result.data}")

    @wf.stage("charge")
    def charge(ctx: dict[str, Any]) -> dict[str, Any]:
        calls.append("charge")
        assert ctx["validate.validated"] is True
        if fail_at == "charge":
            raise RuntimeError("payment gateway declined")
        return {"chargeId": "ch-1"}

    @charge.compensate
    def undo_charge(ctx: dict[str, Any], result: Any) -> None:
        calls.append("undo:charge")

    @wf.stage("ship")
    async def ship(ctx: dict[str, Any]) -> dict[str, Any]:
        calls.append("ship")
        if fail_at == "ship":
            raise RuntimeError("no courier")
        return {"trackingId": "t-1", "charge": ctx["charge.chargeId"]}

    return wf


async def test_three_stages_complete_with_go_events_and_state(url: str, names: Names, flow_store: str) -> None:
    calls: list[str] = []
    wf = three_stages(f"bt-flow-{names.queue('wf')}", calls)
    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        iid = await flows.start(wf, {"orderId": "o-1", "amount": 99.95})
        state = await flows.wait(iid, timeout=10)
        assert calls == ["validate", "charge", "ship"]
        assert state.status == "completed" and state.version == 5 and state.current_stage is None
        assert [r.stage_id for r in state.stage_results] == ["validate", "charge", "ship"]
        assert all(r.status == "completed" and r.end_ns == r.start_ns + r.duration_ns for r in state.stage_results)
        assert state.global_data == {"orderId": "o-1", "amount": 99.95, "validate.validated": True,
                                     "charge.chargeId": "ch-1", "ship.trackingId": "t-1", "ship.charge": "ch-1"}
        assert await events.wait_for(iid, 4) == [("StageCompletedEvent", 2), ("StageCompletedEvent", 3),
                                                 ("StageCompletedEvent", 4), ("WorkflowCompletedEvent", 5)]
        done = events.payloads(iid, "WorkflowCompletedEvent")[0]
        assert done["workflowName"] == "demo flow" and done["completedStages"] == 3 and done["totalStages"] == 3
        assert [p["currentStage"] for p in events.payloads(iid, "StageCompletedEvent")] == [1, 2, 3]
        record = await flows.status(iid)
        assert record is not None and record.status == "completed" and record.version == 5
        assert [r.instance_id for r in await flows.list(workflow=wf.id, status="completed")] == [iid]


async def test_failure_at_stage_2_compensates_stage_1(url: str, names: Names, flow_store: str) -> None:
    calls: list[str] = []
    wf = three_stages(f"bt-flow-{names.queue('wf')}", calls, fail_at="charge")
    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        iid = await flows.start(wf, {"orderId": "o-1"})
        state = await flows.wait(iid, timeout=10)
        assert calls == ["validate", "charge", "undo:validate:{'validated': True}"]
        assert state.status == "compensated" and state.version == 4
        assert state.error_message == "payment gateway declined" and state.current_stage == "charge"
        assert [r.stage_id for r in state.stage_results] == ["validate"]  # the failed one is not appended
        assert await events.wait_for(iid, 3) == [("StageCompletedEvent", 2), ("WorkflowFailedEvent", 3),
                                                 ("WorkflowCompensatedEvent", 4)]
        failed = events.payloads(iid, "WorkflowFailedEvent")[0]
        assert failed["failedStageId"] == "charge" and failed["failedStageIndex"] == 1
        assert failed["error"] == "payment gateway declined" and failed["compensationExecuted"] is False
        comp = events.payloads(iid, "WorkflowCompensatedEvent")[0]
        assert comp["totalCompensations"] == 1 and comp["successfulCompensations"] == 1
        assert [r["stageId"] for r in comp["compensationResults"]] == ["validate"]
        assert (await flows.status(iid)).status == "compensated"  # type: ignore[union-attr]


async def test_four_stages_failing_at_4_compensate_3_2_1_in_reverse(url: str, names: Names, flow_store: str) -> None:
    calls: list[str] = []
    wf = Workflow(f"bt-flow-{names.queue('wf')}")
    for sid in ("a", "b", "c"):
        wf.add_stage(sid, lambda ctx, sid=sid: calls.append(sid) and None,
                     compensate=lambda ctx, result: calls.append(f"undo:{result.stage_id}"))

    @wf.stage("d")
    def d(ctx: dict[str, Any]) -> None:
        raise ValueError("d broke")

    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        iid = await flows.start(wf, {})
        state = await flows.wait(iid, timeout=10)
        assert calls == ["a", "b", "c", "undo:c", "undo:b", "undo:a"]
        assert state.status == "compensated" and state.version == 6
        comp = events.payloads(iid, "WorkflowCompensatedEvent")
        await events.wait_for(iid, 5)
        comp = events.payloads(iid, "WorkflowCompensatedEvent")[0]
        assert [(r["stageId"], r["compensationIndex"]) for r in comp["compensationResults"]] == \
            [("c", 2), ("b", 1), ("a", 0)]
        assert comp["totalCompensations"] == 3 and comp["failedStageIndex"] == 3


async def test_failure_at_stage_1_has_nothing_to_compensate(url: str, names: Names, flow_store: str) -> None:
    wf = Workflow(f"bt-flow-{names.queue('wf')}")
    wf.add_stage("a", lambda ctx: (_ for _ in ()).throw(RuntimeError("first fails")))
    wf.add_stage("b", lambda ctx: None)
    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        iid = await flows.start(wf, {})
        state = await flows.wait(iid, timeout=10)
        assert state.status == "failed" and state.version == 2 and state.stage_results == []
        assert await events.wait_for(iid, 1) == [("WorkflowFailedEvent", 2)]


async def test_optional_stage_failing_and_skipped_by_dependency(url: str, names: Names, flow_store: str) -> None:
    wf = Workflow(f"bt-flow-{names.queue('wf')}")
    wf.add_stage("a", lambda ctx: {"x": 1})
    wf.add_stage("flaky", lambda ctx: 1 / 0, optional=True)
    wf.add_stage("needs-flaky", lambda ctx: {"ran": True}, optional=True, depends_on=["flaky"])
    wf.add_stage("last", lambda ctx: {"done": True}, depends_on=["a"])
    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        iid = await flows.start(wf, {})
        state = await flows.wait(iid, timeout=10)
        assert state.status == "completed"
        assert [(r.stage_id, r.status) for r in state.stage_results] == [
            ("a", "completed"), ("flaky", "failed"), ("needs-flaky", "skipped"), ("last", "completed")]
        assert state.stage_results[1].error == "division by zero"
        assert "needs-flaky.ran" not in state.global_data and state.global_data["last.done"] is True
        assert state.version == 6
        assert await events.wait_for(iid, 3) == [("StageCompletedEvent", 2), ("StageCompletedEvent", 5),
                                                 ("WorkflowCompletedEvent", 6)]
        done = events.payloads(iid, "WorkflowCompletedEvent")[0]
        assert (done["completedStages"], done["failedStages"], done["skippedStages"]) == (2, 1, 1)


async def test_timeout_fails_a_required_stage(url: str, names: Names) -> None:
    wf = Workflow(f"bt-flow-{names.queue('wf')}")
    undone: list[str] = []
    wf.add_stage("a", lambda ctx: None, compensate=lambda ctx: undone.append("a"))

    @wf.stage("slow", timeout=0.05)
    async def slow(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(10)

    async with engine_for(url, names, wf) as flows:
        state = await flows.wait(await flows.start(wf, {}), timeout=10)
        assert state.status == "compensated" and undone == ["a"]
        assert state.error_message is not None and "timeout of 0.05 s" in state.error_message


async def test_retry_then_success(url: str, names: Names) -> None:
    attempts: list[int] = []
    wf = Workflow(f"bt-flow-{names.queue('wf')}")

    @wf.stage("flaky", retry=StageRetry(attempts=3, initial=0.01))
    async def flaky(ctx: dict[str, Any]) -> dict[str, Any]:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return {"attempts": len(attempts)}

    async with engine_for(url, names, wf) as flows:
        state = await flows.wait(await flows.start(wf, {}), timeout=10)
        assert state.status == "completed" and state.global_data["flaky.attempts"] == 3 and attempts == [1, 2, 3]


@dataclasses.dataclass
class OrderCtx:
    order_id: str = ""
    amount: float = 0.0
    validated: bool = False
    charge_id: str = ""


class PydOrder(pydantic.BaseModel):
    orderId: str = ""
    amount: float = 0.0
    validated: bool = False
    chargeId: str = ""


@pytest.mark.parametrize("ctx_cls", [OrderCtx, PydOrder], ids=["dataclass", "pydantic"])
async def test_typed_context(url: str, names: Names, ctx_cls: type) -> None:
    wf = Workflow(f"bt-flow-{names.queue('wf')}", context=ctx_cls)
    seen: list[Any] = []

    @wf.stage("validate")
    def validate(ctx: Any) -> None:
        seen.append(ctx)
        ctx.validated = True  # mutated in place

    @wf.stage("charge")
    async def charge(ctx: Any) -> Any:
        seen.append(ctx)
        assert ctx.validated is True
        if isinstance(ctx, OrderCtx):
            return dataclasses.replace(ctx, charge_id=f"ch-{ctx.order_id}")
        return {"chargeId": f"ch-{ctx.orderId}"}

    start = OrderCtx(order_id="o-7", amount=5.0) if ctx_cls is OrderCtx else PydOrder(orderId="o-7", amount=5.0)
    async with engine_for(url, names, wf) as flows:
        state = await flows.wait(await flows.start(wf, start), timeout=10)
        assert state.status == "completed"
        assert all(isinstance(c, ctx_cls) for c in seen)
        assert state.global_data == {"orderId": "o-7", "amount": 5.0, "validated": True, "chargeId": "ch-o-7"}
        assert all(r.data is None for r in state.stage_results)  # typed results carry no data


async def test_wait_for_an_instance_finished_elsewhere_and_unknown_workflow(url: str, names: Names) -> None:
    wf = three_stages(f"bt-flow-{names.queue('wf')}", [])
    async with engine_for(url, names, wf) as flows:
        iid = await flows.start(wf, {"orderId": "o-1"})
        first = await flows.wait(iid, timeout=10)
        again = await flows.wait(iid, timeout=1)  # already finished: from the store
        assert first.version == again.version == 5
        with pytest.raises(errors.FlowTimeoutError):
            await flows.wait("no-such-instance", timeout=0.1)
        with pytest.raises(errors.UnknownWorkflowError):
            await flows.start("not-registered", {})


async def test_wait_in_another_engine_hears_the_terminal_event(url: str, names: Names) -> None:
    """An engine that only starts flows (its own private store) learns the end from the events."""
    from mmate_fast.client import Client
    from mmate_fast.stageflow import FlowEngine

    calls: list[str] = []
    wf = three_stages(f"bt-flow-{names.queue('wf')}", calls, fail_at="ship")
    async with engine_for(url, names, wf) as worker, Client(url, service_name=names.service()) as client:
        starter = FlowEngine(client, prefix=worker.prefix)
        try:
            await starter.register(wf, serve=False)
            iid = await starter.start(wf, {"orderId": "o-1"})
            state = await starter.wait(iid, timeout=10)
            assert state.status == "compensated" and state.version == 5
            assert state.error_message == "no courier"
            assert await starter.status(iid) is not None  # its own start was saved
            assert calls == ["validate", "charge", "ship", "undo:charge", "undo:validate:{'validated': True}"]
        finally:
            await starter.close()


async def test_queues_are_declared_with_gos_arguments(url: str, names: Names, conn: Any) -> None:
    """A Go engine declaring the same queues gets no 406: same flags, same arguments."""
    wf = three_stages(f"bt-flow-{names.queue('wf')}", [])
    async with engine_for(url, names, wf, serve=False) as flows:
        go_args = [(flows.stage_queue(wf, i), 3_600_000) for i in range(3)] + [(flows.compensation_queue(wf), 7_200_000)]
        for queue, ttl in go_args:
            ch = await conn.channel()
            try:
                await ch.queue_declare(queue, durable=True, arguments={
                    "x-message-ttl": ttl, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"dlq.{queue}"})
                with pytest.raises(errors.PreconditionFailedError):
                    await ch.queue_declare(queue, durable=True)  # without Go's arguments: refused
            finally:
                if ch.is_open:
                    await ch.close()


async def test_sqlite_store_keeps_every_state_change(url: str, names: Names, tmp_path: Any) -> None:
    calls: list[str] = []
    ok = three_stages(f"bt-flow-{names.queue('wf')}", calls)
    bad = three_stages(f"bt-flow-{names.queue('wf')}", calls, fail_at="ship")
    async with engine_for(url, names, ok, bad, store=f"sqlite:///{tmp_path}/flows.db") as flows:
        done = await flows.wait(await flows.start(ok, {"orderId": "o-1"}), timeout=10)
        undone = await flows.wait(await flows.start(bad, {"orderId": "o-1"}), timeout=10)
        assert (done.status, done.version, undone.status, undone.version) == ("completed", 5, "compensated", 5)
        assert [r.status for r in await flows.list()] == ["compensated", "completed"]
        state = await flows.state(undone.instance_id)
        assert state is not None and [r.stage_id for r in state.stage_results] == ["validate", "charge"]
        assert state.error_message == "no courier" and state.current_stage == "ship"


async def test_a_deleted_stage_queue_comes_back_with_gos_arguments(url: str, names: Names, conn: Any) -> None:
    """The consumer of a deleted stage queue restarts, declaring it again as registered."""
    wf = three_stages(f"bt-flow-{names.queue('wf')}", [])
    async with engine_for(url, names, wf) as flows:
        queue = flows.stage_queue(wf, 1)
        ch = await conn.channel()
        await ch.queue_delete(queue)
        [sub] = [s for s in flows._subscriptions if s.queue == queue]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while sub.stats.consumer_restarts < 1:
            assert loop.time() < deadline, "the stage consumer did not come back"
            await asyncio.sleep(0.02)
        await ch.queue_declare(queue, durable=True, arguments={  # Go's arguments again: no 406
            "x-message-ttl": 3_600_000, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"dlq.{queue}"})
        await ch.close()
        state = await flows.wait(await flows.start(wf, {"orderId": "o-1"}), timeout=10)
        assert state.status == "completed"


async def test_events_off_publishes_no_event_and_wait_still_works(url: str, names: Names) -> None:
    wf = three_stages(f"bt-flow-{names.queue('wf')}", [], fail_at="charge")
    ok = three_stages(f"bt-flow-{names.queue('wf')}", [])
    seen = Events()
    async with engine_for(url, names, wf, ok, publish_events=False) as flows:
        ch = await flows.client.connection.channel()  # the lifecycle events, were there any
        q = names.queue("events")
        await ch.queue_declare(q, durable=False)
        await ch.queue_bind(q, "mmate.events", "evt.#")
        await ch.basic_consume(q, seen.on_delivery, no_ack=True)
        failed = await flows.wait(await flows.start(wf, {"orderId": "o-1"}), timeout=10)
        done = await flows.wait(await flows.start(ok, {"orderId": "o-1"}), timeout=10)
        assert (failed.status, done.status) == ("compensated", "completed")
        await asyncio.sleep(0.2)
        assert [t for t, p, _ in seen.seen if p.get("instanceId") in (failed.instance_id, done.instance_id)] == []
