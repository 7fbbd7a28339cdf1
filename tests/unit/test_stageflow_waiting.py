"""What ``FlowEngine.wait`` makes of Go's terminal events (vectors 25, 27, 34) and when a state is final."""
from __future__ import annotations

import json
from typing import Any

from mmate_fast.stageflow import _wire
from mmate_fast.stageflow._waiting import is_final, state_from_event
from tests.vectors import VECTORS


def event(number: int) -> tuple[str, dict[str, Any]]:
    [path] = VECTORS.glob(f"{number}-stageflow-*.body.json")
    body = json.loads(path.read_text())
    return body["type"], body["payload"]


def test_completed_event_gives_the_final_state() -> None:
    state = state_from_event(*event(34))
    assert (state.status, state.version, state.workflow_id) == ("completed", 5, "mmate-peer-vectors-flow")
    assert [r.stage_id for r in state.stage_results] == ["validate", "charge", "ship"]
    assert state.global_data["ship.trackingNo"] == "TRK-1"
    assert _wire.format_time(state.end_ns or 0) == "2026-11-27T13:11:25.616981622Z"
    assert is_final(state)


def test_failed_event_with_something_to_compensate_is_not_final() -> None:
    state = state_from_event(*event(25))
    assert (state.status, state.version, state.current_stage) == ("failed", 3, "charge")
    assert state.error_message == "payment gateway declined (simulated failure 1/1)"
    assert not is_final(state)  # validate completed: the compensated event follows
    state.stage_results = []
    assert is_final(state)


def test_compensated_event_is_final() -> None:
    state = state_from_event(*event(27))
    assert (state.status, state.version) == ("compensated", 4)
    assert state.global_data == {"amount": 99.95, "orderId": "order-2001", "validate.validated": True}
    assert is_final(state)


def _final(iid: str) -> _wire.WorkflowState:
    return _wire.WorkflowState(workflow_id="wf", instance_id=iid, status="completed", stage_results=[],
                               global_data={}, start_ns=1, version=3, last_modified_ns=2, end_ns=2)


def test_a_wait_is_woken_by_its_end_polls_the_store_for_a_lost_event_and_times_out() -> None:
    """One future and one timer per poll interval: the end heard wakes the wait at once; a flow whose
    event was lost is found in the store at the first poll; nothing at all ends in FlowTimeoutError,
    and no waiter is left registered."""
    import asyncio

    import pytest

    from mmate_fast import errors
    from mmate_fast.stageflow import _waiting
    from mmate_fast.stageflow.store import FlowRecord, open_store

    async def main() -> None:
        store = open_store("memory://")
        w = _waiting.Waiters(None, store, listen=True)
        w._channel = object()  # a listener "exists": flows started here wait without a first store look
        loop = asyncio.get_running_loop()
        w.started("a")
        loop.call_later(0.05, w.resolve, _final("a"))
        t0 = loop.time()
        assert (await w.wait("a", 5)).status == "completed"
        assert loop.time() - t0 < _waiting.LISTENING_POLL
        w.started("b")  # its event is lost; the store has its end
        s = _final("b")
        await store.save(FlowRecord("b", "wf", "completed", 3, None, None, 1, 2, _wire.encode_state(s)))
        t0 = loop.time()
        assert (await w.wait("b", 5)).instance_id == "b"
        assert _waiting.LISTENING_POLL <= loop.time() - t0 + 0.01 < 2
        w.started("c")
        with pytest.raises(errors.FlowTimeoutError, match="did not finish within"):
            await w.wait("c", 0.2)
        assert w._futures == {}
        await store.close()

    asyncio.run(main())


def test_an_end_nobody_waits_for_is_kept_undecoded_until_a_wait_asks() -> None:
    """Every listener on a shared broker hears every flow's end: an event for an instance this engine
    neither started nor waits for is kept as bytes (not decoded); a wait that begins later decodes it
    and returns at once; an event for a waited instance wakes it as before."""
    import asyncio
    from types import SimpleNamespace

    from mmate_fast.stageflow import _waiting
    from mmate_fast.stageflow.store import open_store

    type_name, payload = event(34)  # WorkflowCompletedEvent
    iid = payload["instanceId"]

    def delivery(instance: str) -> SimpleNamespace:
        body = json.dumps({"type": type_name, "payload": {**payload, "instanceId": instance}}).encode()
        return SimpleNamespace(routing_key=f"evt.{instance}.{type_name}", body=body)

    async def main() -> None:
        store = open_store("memory://")
        w = _waiting.Waiters(None, store, listen=True)
        w._channel = object()
        w._on_event(delivery(iid))
        assert iid not in w._finals and list(w._unheard) == [iid]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        state = await w.wait(iid, 5)
        assert state.status == "completed" and state.instance_id == iid and loop.time() - t0 < 0.1
        assert not w._unheard
        w.started("other")
        loop.call_later(0.05, w._on_event, delivery("other"))
        assert (await w.wait("other", 5)).instance_id == "other"
        assert not w._unheard and w._futures == {}
        await store.close()

    asyncio.run(main())
