"""``FlowEngine(events=...)``: which lifecycle events an engine publishes, on memory:// and RabbitMQ,
and that ``wait()`` answers with each choice (locally, and in another engine that only starts flows)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.stageflow import FlowEngine
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import Events, engine_for
from tests.behaviour.test_stageflow import three_stages


async def test_terminal_events_only(url: str, names: Names) -> None:
    ok = three_stages(f"bt-flow-{names.queue('wf')}", [])
    bad = three_stages(f"bt-flow-{names.queue('wf')}", [], fail_at="charge")
    events = Events()
    async with engine_for(url, names, ok, bad, events=events, publish_events="terminal") as flows:
        assert flows.event_types == {"WorkflowCompletedEvent", "WorkflowFailedEvent", "WorkflowCompensatedEvent"}
        done = await flows.wait(await flows.start(ok, {"orderId": "o-1"}), timeout=10)
        undone = await flows.wait(await flows.start(bad, {"orderId": "o-1"}), timeout=10)
        assert (done.status, done.version, undone.status, undone.version) == ("completed", 5, "compensated", 4)
        # the same sequences as with every event, without the StageCompletedEvents
        assert await events.wait_for(done.instance_id, 1) == [("WorkflowCompletedEvent", 5)]
        assert await events.wait_for(undone.instance_id, 2) == [("WorkflowFailedEvent", 3),
                                                               ("WorkflowCompensatedEvent", 4)]
        await asyncio.sleep(0.2)  # nothing else comes
        assert events.of(done.instance_id) == [("WorkflowCompletedEvent", 5)]
        assert len(events.of(undone.instance_id)) == 2
        final = events.payloads(done.instance_id, "WorkflowCompletedEvent")[0]
        assert final["completedStages"] == 3 and len(final["stageResults"]) == 3


async def test_wait_in_another_engine_with_terminal_events(url: str, names: Names) -> None:
    """A starter with its own private store learns the end from the terminal events alone."""
    ok = three_stages(f"bt-flow-{names.queue('wf')}", [])
    bad = three_stages(f"bt-flow-{names.queue('wf')}", [], fail_at="ship")
    async with (engine_for(url, names, ok, bad, publish_events="terminal") as worker,
                Client(url, service_name=names.service()) as client):
        starter = FlowEngine(client, prefix=worker.prefix, events="terminal")
        try:
            await starter.register(ok, serve=False)
            await starter.register(bad, serve=False)
            done = await starter.wait(await starter.start(ok, {"orderId": "o-1"}), timeout=10)
            undone = await starter.wait(await starter.start(bad, {"orderId": "o-1"}), timeout=10)
            assert (done.status, done.version) == ("completed", 5)
            assert done.global_data["ship.trackingId"] == "t-1"  # rebuilt from the event's finalData
            assert (undone.status, undone.error_message) == ("compensated", "no courier")
            # the starter's store only knows the start: the answer came from the events
            record = await starter.status(done.instance_id)
            assert record is not None and record.status == "running"
        finally:
            await starter.close()


async def test_a_set_of_event_types(url: str, names: Names) -> None:
    wf = three_stages(f"bt-flow-{names.queue('wf')}", [])
    events = Events()
    async with engine_for(url, names, wf, events=events, publish_events={"StageCompletedEvent"}) as flows:
        state = await flows.wait(await flows.start(wf, {"orderId": "o-1"}), timeout=10)  # local shortcut
        assert state.status == "completed"
        assert await events.wait_for(state.instance_id, 3) == [
            ("StageCompletedEvent", 2), ("StageCompletedEvent", 3), ("StageCompletedEvent", 4)]
        await asyncio.sleep(0.2)
        assert len(events.of(state.instance_id)) == 3  # no WorkflowCompletedEvent


async def test_the_default_is_the_terminal_events() -> None:
    """Go publishes no lifecycle event unless asked; ours publish by default only what wait() in
    another process needs (events=True gives Go's WithCompletionEvents(true): all four)."""
    assert FlowEngine(object()).event_types == {"WorkflowCompletedEvent", "WorkflowFailedEvent",
                                               "WorkflowCompensatedEvent"}
    assert "StageCompletedEvent" in FlowEngine(object(), events=True).event_types


@pytest.mark.parametrize("bad", ["all", "Terminal", {"StageCompleted"}, 1, None])
async def test_bad_events_option_is_refused(bad: Any) -> None:
    with pytest.raises(errors.InvalidArgumentError, match="events"):
        FlowEngine(object(), events=bad)


async def test_the_completed_event_carries_the_stored_final_state(url: str, names: Names) -> None:
    """wait() in another process takes a WorkflowCompletedEvent's state without reading the store:
    it is the state the engine saved, byte for byte once encoded."""
    from mmate_fast.stageflow import _wire
    from mmate_fast.stageflow._waiting import state_from_event

    wf = three_stages(f"bt-flow-{names.queue('wf')}", [])
    events = Events()
    async with engine_for(url, names, wf, events=events) as flows:
        iid = await flows.start(wf, {"orderId": "o-1", "amount": 99.95})
        await flows.wait(iid, timeout=10)
        await events.wait_for(iid, 4)
        [payload] = events.payloads(iid, "WorkflowCompletedEvent")
        stored = await flows.state(iid)
        assert stored is not None
        assert _wire.encode_state(state_from_event("WorkflowCompletedEvent", payload)) == _wire.encode_state(stored)
