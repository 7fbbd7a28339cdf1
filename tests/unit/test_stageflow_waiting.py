"""What ``FlowEngine.wait`` makes of Go's terminal events (vectors 25, 27, 34) and when a state is final."""
from __future__ import annotations

import json
from typing import Any

import pytest

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
        # the sweep armed for "a" (gone) looks at "b" early: within half its interval, never later
        assert _waiting.LISTENING_POLL / 2 <= loop.time() - t0 + 0.01 < 2
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


class _CountingStore:
    """A memory store that counts the reads ``wait()`` makes (``get_ended`` optional)."""

    def __init__(self, ended: bool) -> None:
        from mmate_fast.stageflow.store import open_store

        self.inner = open_store("memory://")
        self.gets = 0
        self.ended_calls: list[int] = []
        if ended:
            self.get_ended = self._get_ended

    async def get(self, iid: str) -> object:
        self.gets += 1
        return await self.inner.get(iid)

    async def _get_ended(self, ids: list[str]) -> object:
        self.ended_calls.append(len(ids))
        return await self.inner.get_ended(ids)

    async def save(self, record: object) -> None:
        await self.inner.save(record)


@pytest.mark.parametrize("ended", [True, False], ids=["get_ended", "gets"])
def test_waits_whose_events_were_lost_are_found_by_one_sweep_no_later_than_their_poll(ended: bool) -> None:
    """50 waits begun over 0.2 s, their ends stored and their events lost: the store looks of all of
    them come in a few sweeps (one ``get_ended`` each, not a ``get`` per wait), each wait is answered
    no later than ``LISTENING_POLL`` after it began; without ``get_ended`` the sweep reads one by one."""
    import asyncio

    from mmate_fast.stageflow import _waiting
    from mmate_fast.stageflow.store import FlowRecord

    async def main() -> None:
        store = _CountingStore(ended)
        w = _waiting.Waiters(None, store, listen=True)  # type: ignore[arg-type]
        w._channel = object()
        loop = asyncio.get_running_loop()
        took: list[float] = []

        async def one(n: int) -> None:
            iid = f"lost-{n}"
            s = _final(iid)
            await store.save(FlowRecord(iid, "wf", "completed", 3, None, None, 1, 2, _wire.encode_state(s)))
            w.started(iid)
            t0 = loop.time()
            assert (await w.wait(iid, 5)).instance_id == iid
            took.append(loop.time() - t0)

        async def staggered(n: int) -> None:
            await asyncio.sleep(n * 0.004)
            await one(n)

        await asyncio.gather(*(staggered(n) for n in range(50)))
        assert len(took) == 50 and max(took) < _waiting.LISTENING_POLL + 0.3  # (+ a loaded machine's lag)
        if ended:
            assert store.gets == 0 and sum(store.ended_calls) >= 50 and len(store.ended_calls) <= 3
        else:
            assert store.gets == 50
        assert w._polls == {} and w._futures == {}
        w._channel = None  # (not a real one)
        await w.close()

    asyncio.run(main())


def test_a_wait_without_events_polls_soon_and_a_stored_end_is_found() -> None:
    """No listener: the first look at once, then the sweep every 0.02 s doubling: an end stored a
    little after the wait began is found within a few looks."""
    import asyncio

    from mmate_fast.stageflow import _waiting
    from mmate_fast.stageflow.store import FlowRecord

    async def main() -> None:
        store = _CountingStore(True)
        w = _waiting.Waiters(None, store, listen=False)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        s = _final("quiet")

        async def end_later() -> None:
            await asyncio.sleep(0.05)
            await store.save(FlowRecord("quiet", "wf", "completed", 3, None, None, 1, 2, _wire.encode_state(s)))

        t0 = loop.time()
        task = asyncio.ensure_future(end_later())
        assert (await w.wait("quiet", 5)).instance_id == "quiet"
        await task
        assert loop.time() - t0 < 1.5
        assert store.gets == 1 and 1 <= len(store.ended_calls) <= 7  # the look at the start, then sweeps
        await w.close()

    asyncio.run(main())


def test_a_stage_result_the_fast_reader_declines_is_read_by_the_general_one() -> None:
    """A result time with an offset (not Go's UTC form) still decodes, to the same instant; a wrong
    one raises FlowStateError naming the key (the event is then ignored by the listener)."""
    from mmate_fast.errors import FlowStateError

    type_name, payload = event(34)
    first = dict(payload["stageResults"][0])
    first["startTime"] = "2026-11-27T15:11:25.5+02:00"
    state = state_from_event(type_name, {**payload, "stageResults": [first, *payload["stageResults"][1:]]})
    assert _wire.format_time(state.stage_results[0].start_ns) == "2026-11-27T13:11:25.5Z"
    assert [r.stage_id for r in state.stage_results] == ["validate", "charge", "ship"]
    first["startTime"] = 7
    with pytest.raises(FlowStateError, match="startTime"):
        state_from_event(type_name, {**payload, "stageResults": [first]})


def test_the_state_holds_the_events_data_and_every_field() -> None:
    """Completed: the event's times, ``finalData`` and ``sequence``; compensated: no start time, the
    compensation's end as last modified."""
    type_name, payload = event(34)
    state = state_from_event(type_name, payload)
    assert state.global_data == payload["finalData"]
    assert (state.current_stage, state.error_message) == (None, None)
    assert state.start_ns == _wire.parse_time(payload["startTime"])
    assert state.end_ns == state.last_modified_ns == _wire.parse_time(payload["endTime"])
    type_name, payload = event(27)
    state = state_from_event(type_name, payload)
    assert (state.start_ns, state.current_stage) == (0, None)
    assert state.end_ns == _wire.parse_time(payload["failureTime"])
    assert state.last_modified_ns == _wire.parse_time(payload["compensationEndTime"])
    assert state.error_message == (payload.get("originalError") or None)
