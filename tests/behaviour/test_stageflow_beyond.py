"""StageFlow beyond Go, on memory:// and RabbitMQ: a stage's effect applied once per instance when its
message is delivered twice (no second completion), resume after a worker dies mid-stage (the unacked
stage message goes to another worker), parallel stages with a join decided once, and compensation of
the members that completed when one fails."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson

from mmate_fast.client import Client
from mmate_fast.stageflow import FlowEngine, Workflow, _wire
from mmate_fast.stageflow.store import _sqlite
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import Events, engine_for, flow_queues


def counted_flow(wf_id: str, calls: list[str]) -> Workflow:
    wf = Workflow(wf_id)
    for sid in ("a", "b", "c"):
        wf.add_stage(sid, lambda ctx, sid=sid: calls.append(sid) or {"n": len(calls)})
    return wf


def hop_to(flows: FlowEngine, wf: Workflow, index: int, done: list[str]) -> Any:
    """The stage message ``index`` gets after the stages ``done`` completed (a fresh instance)."""
    now = time.time_ns()
    state = _wire.WorkflowState(workflow_id=wf.id, instance_id=str(uuid.uuid4()), status="running",
                                start_ns=now, last_modified_ns=now, global_data={"k": 1})
    for sid in done:
        _wire.add_stage_result(state, _wire.StageResult(sid, "completed", start_ns=now, end_ns=now), now_ns=now)
    n = len(wf.stages)
    return _wire.flow_message(state, stage_index=index, stage_name=wf.stages[index].id,
                              next_queue=flows.stage_queue(wf, index + 1) if index + 1 < n else None,
                              payload={"k": 1})


async def test_the_same_hop_published_twice_is_applied_once(url: str, names: Names, flow_store: str) -> None:
    calls: list[str] = []
    wf = counted_flow(f"bt-flow-{names.queue('wf')}", calls)
    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        client = flows.client
        hop = hop_to(flows, wf, 1, ["a"])
        for _ in range(2):  # back to back: the copies may be handled at the same time
            await client.publish(hop, exchange="", routing_key=flows.stage_queue(wf, 1))
        state = await flows.wait(hop.instance_id, timeout=10)
        assert state.status == "completed" and calls == ["b", "c"]
        await events.wait_for(hop.instance_id, 3)
        await client.publish(hop, exchange="", routing_key=flows.stage_queue(wf, 1))  # once more, later
        await client.publish(hop_to(flows, wf, 2, ["a", "b"]), exchange="", routing_key=flows.stage_queue(wf, 2))
        await asyncio.sleep(0.3)
        assert calls == ["b", "c", "c"]  # the other instance's last stage ran; ours never again
        assert [t for t, _ in events.of(hop.instance_id)] == ["StageCompletedEvent", "StageCompletedEvent",
                                                               "WorkflowCompletedEvent"]


async def test_the_last_hop_published_twice_completes_once(url: str, names: Names, flow_store: str) -> None:
    calls: list[str] = []
    wf = counted_flow(f"bt-flow-{names.queue('wf')}", calls)
    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        hop = hop_to(flows, wf, 2, ["a", "b"])
        for _ in range(3):
            await flows.client.publish(hop, exchange="", routing_key=flows.stage_queue(wf, 2))
        state = await flows.wait(hop.instance_id, timeout=10)
        assert state.status == "completed" and state.version == 5
        await asyncio.sleep(0.3)
        assert calls == ["c"]
        assert events.of(hop.instance_id) == [("StageCompletedEvent", 4), ("WorkflowCompletedEvent", 5)]


class _ClaimedBehindOurBack:
    """A store on which another worker claims stage ``key`` of an instance (and, with ``final``, saves
    its final state in one transaction as the engine does) right after our read found no claim: the
    race our claim (the last stage's claim_stage_and_save) must lose cleanly."""

    def __init__(self, store: Any, key: str, outcome: str, final: Any = None) -> None:
        self._store, self._key, self._outcome, self._final = store, key, outcome, final

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def stage_result(self, instance_id: str, stage_key: str) -> str | None:
        found = await self._store.stage_result(instance_id, stage_key)
        if found is None and stage_key == self._key:
            if self._final is None:
                await self._store.claim_stage(instance_id, stage_key, self._outcome)
            else:
                await self._store.claim_stage_and_save(instance_id, stage_key, self._outcome, self._final)
        return found

    def stage_result_now(self, instance_id: str, stage_key: str) -> str | None:
        """The same race on the engine's path for stores that answer at once (memory://)."""
        found = self._store.stage_result_now(instance_id, stage_key)
        if found is None and stage_key == self._key:
            if self._final is None:
                self._store.claim_stage_now(instance_id, stage_key, self._outcome)
            else:
                self._store.claim_stage_and_save_now(instance_id, stage_key, self._outcome, self._final)
        return found

    def claim_computed_later(self, instance_id: str, stage_key: str, compute: Any) -> Any:
        """The same race on SQLite's one-transaction hop: their claim lands in the transaction right
        after our stage ran (through the store's own connection: the read found nothing before)."""
        if stage_key != self._key:
            return self._store.claim_computed_later(instance_id, stage_key, compute)
        store = self._store
        loop = asyncio.get_running_loop()

        def racing() -> Any:
            ours = compute()
            if ours is None:  # declined (on the writer thread): theirs is queued before our claim comes
                if self._final is None:
                    loop.call_soon_threadsafe(store.claim_stage_later, instance_id, stage_key, self._outcome)
                else:
                    loop.call_soon_threadsafe(store.claim_stage_and_save_later, instance_id, stage_key,
                                              self._outcome, self._final)
                return None
            conn = store._conn()
            if self._final is None:
                _sqlite._claim(conn, instance_id, stage_key, self._outcome, store._seqs)
            else:
                _sqlite._claim_and_save(conn, instance_id, stage_key, self._outcome, self._final, store._seqs)
            return ours

        return store.claim_computed_later(instance_id, stage_key, racing)

    def stage_result_later(self, instance_id: str, stage_key: str) -> Any:
        """The same race on the engine's path for stores that answer with futures (SQLite): their
        claim is queued right behind our read, in the same transaction."""
        found = self._store.stage_result_later(instance_id, stage_key)
        if stage_key == self._key:
            if self._final is None:
                self._store.claim_stage_later(instance_id, stage_key, self._outcome)
            else:
                self._store.claim_stage_and_save_later(instance_id, stage_key, self._outcome, self._final)
        return found


async def test_the_last_stage_losing_its_claim_to_another_worker_completes_nothing(
        url: str, names: Names, flow_store: str) -> None:
    calls: list[str] = []
    wf = counted_flow(f"bt-flow-{names.queue('wf')}", calls)
    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        hop = hop_to(flows, wf, 2, ["a", "b"])
        theirs = _wire.decode_state(hop.serialized_workflow_state)
        result = _wire.StageResult("c", "completed", data={"n": 99}, start_ns=1, end_ns=2, duration_ns=1)
        _wire.add_stage_result(theirs, result, now_ns=3)
        _wire.mark_completed(theirs, end_ns=3)
        outcome = orjson.dumps({"result": result.to_go(), "updates": {"c.n": 99}}).decode()
        flows._rt.store = _ClaimedBehindOurBack(flows.store, "stage2", outcome, flows._rt.record(theirs))
        await flows.client.publish(hop, exchange="", routing_key=flows.stage_queue(wf, 2))
        state = await flows.wait(hop.instance_id, timeout=10)
        assert state.version == theirs.version and state.global_data["c.n"] == 99  # theirs, not ours
        await asyncio.sleep(0.3)
        assert calls == ["c"]  # ours ran (the race), but its outcome lost: nothing of it was published
        assert events.of(hop.instance_id) == []


async def test_a_middle_stage_losing_its_claim_goes_on_with_the_winners_outcome(
        url: str, names: Names, flow_store: str) -> None:
    calls: list[str] = []
    wf = counted_flow(f"bt-flow-{names.queue('wf')}", calls)
    events = Events()
    async with engine_for(url, names, wf, events=events, store=flow_store) as flows:
        hop = hop_to(flows, wf, 1, ["a"])
        await flows.store.save(flows._rt.record(_wire.decode_state(hop.serialized_workflow_state)))
        result = _wire.StageResult("b", "completed", data={"n": 99}, start_ns=1, end_ns=2, duration_ns=1)
        outcome = orjson.dumps({"result": result.to_go(), "updates": {"b.n": 99}}).decode()
        flows._rt.store = _ClaimedBehindOurBack(flows.store, "stage1", outcome)
        await flows.client.publish(hop, exchange="", routing_key=flows.stage_queue(wf, 1))
        state = await flows.wait(hop.instance_id, timeout=10)
        assert state.status == "completed" and state.global_data["b.n"] == 99  # the winner's outcome
        assert calls == ["b", "c"]  # ours ran (the race), its outcome lost; the flow went on once
        assert [r.data for r in state.stage_results] == [None, {"n": 99}, {"n": 2}]
        await events.wait_for(hop.instance_id, 3)
        assert [t for t, _ in events.of(hop.instance_id)] == ["StageCompletedEvent", "StageCompletedEvent",
                                                               "WorkflowCompletedEvent"]


async def test_a_worker_dying_mid_stage_hands_the_stage_to_another(url: str, names: Names) -> None:
    """Worker 1 takes stage b and dies before acking; worker 2 gets the message again (redelivered)
    and finishes the flow from the last completed stage; stage a is not run again."""
    wf_id = f"bt-flow-{names.queue('wf')}"
    prefix = f"{names.queue('sf')}."
    store = f"memory://{uuid.uuid4().hex}"  # shared by both engines of this process
    ran: list[str] = []
    entered = asyncio.Event()

    def workflow(hang: bool) -> Workflow:
        wf = Workflow(wf_id)
        wf.add_stage("a", lambda ctx: ran.append("a") or {"a": 1})

        @wf.stage("b")
        async def b(ctx: dict[str, Any]) -> dict[str, Any]:
            ran.append(f"b{'-hang' if hang else ''}")
            if hang:
                entered.set()
                await asyncio.sleep(3600)
            return {"b": 2}

        wf.add_stage("c", lambda ctx: ran.append("c") or {"c": 3})
        return wf

    wf1, wf2 = workflow(True), workflow(False)
    flow_queues(names, prefix, wf1)
    async with Client(url, service_name=names.service(), recovery=False) as c2:
        c1 = await Client(url, service_name=names.service(), recovery=False).connect()
        worker1 = FlowEngine(c1, prefix=prefix, store=store)
        await worker1.register(wf1)
        iid = await worker1.start(wf1, {})
        await asyncio.wait_for(entered.wait(), 10)
        worker2 = FlowEngine(c2, prefix=prefix, store=store)
        try:
            await worker2.register(wf2)
            await c1.connection.close()  # worker 1 is gone with stage b unacked
            state = await worker2.wait(iid, timeout=10)
            assert state.status == "completed" and state.global_data == {"a.a": 1, "b.b": 2, "c.c": 3}
            assert ran == ["a", "b-hang", "b", "c"]
        finally:
            await worker2.close()
            await c1.close(timeout=0.5)


def parallel_flow(wf_id: str, calls: list[str], *, fail: str | None = None) -> Workflow:
    wf = Workflow(wf_id)

    def stage(sid: str) -> Any:
        async def run(ctx: dict[str, Any]) -> dict[str, Any]:
            calls.append(sid)
            await asyncio.sleep(0.01)
            if sid == fail:
                raise RuntimeError(f"{sid} failed")
            return {"done": True, "saw": sorted(k for k in ctx if k.endswith(".done"))}
        return run

    for sid in ("first", "left", "right", "last"):
        wf.add_stage(sid, stage(sid), compensate=lambda ctx, result: calls.append(f"undo:{result.stage_id}"))
    wf.parallel("left", "right")
    return wf


async def test_parallel_stages_run_side_by_side_and_join_once(url: str, names: Names) -> None:
    calls: list[str] = []
    wf = parallel_flow(f"bt-flow-{names.queue('wf')}", calls)
    events = Events()
    async with engine_for(url, names, wf, events=events) as flows:
        iid = await flows.start(wf, {"k": 1})
        state = await flows.wait(iid, timeout=10)
        assert state.status == "completed" and state.version == 6
        assert calls[0] == "first" and sorted(calls[1:3]) == ["left", "right"] and calls[3] == "last"
        assert [r.stage_id for r in state.stage_results] == ["first", "left", "right", "last"]
        gd = state.global_data
        assert gd["left.saw"] == gd["right.saw"] == ["first.done"]  # side by side: neither saw the other
        assert gd["last.saw"] == ["first.done", "left.done", "right.done"]  # merged at the join
        assert await events.wait_for(iid, 5) == [("StageCompletedEvent", 2), ("StageCompletedEvent", 3),
                                                 ("StageCompletedEvent", 4), ("StageCompletedEvent", 5),
                                                 ("WorkflowCompletedEvent", 6)]


async def test_a_failing_parallel_member_compensates_what_completed(url: str, names: Names) -> None:
    calls: list[str] = []
    wf = parallel_flow(f"bt-flow-{names.queue('wf')}", calls, fail="left")
    async with engine_for(url, names, wf) as flows:
        state = await flows.wait(await flows.start(wf, {}), timeout=10)
        assert state.status == "compensated" and state.error_message == "left failed"
        assert [r.stage_id for r in state.stage_results] == ["first", "right"]
        assert "last" not in calls
        assert calls[-2:] == ["undo:right", "undo:first"]
