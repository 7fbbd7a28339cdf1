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
