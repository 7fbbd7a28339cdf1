"""StageFlow's Go wire in one place: the state codec, the message and event contracts, and the pure
builders the engine calls for each hop (no I/O here). Each builder reproduces what Go's engine
puts in the corresponding message (wire spec §8), given the state *after* Go's transition:

* ``flow_message``: the hop to stage ``stage_index`` (state after ``add_stage_result``, or the new
  state at start);
* ``compensation_start`` / ``compensation_message``: the chain after a required stage failed
  (state after ``mark_failed``); the next step reuses the state string unchanged;
* ``stage_completed_event`` (after ``add_stage_result``), ``workflow_completed_event`` (after
  ``mark_completed``), ``workflow_failed_event`` (after ``mark_failed``),
  ``workflow_compensated_event`` (after ``mark_compensated``): ``sequence`` is ``state.version``.

New envelope ids come from each contract's default; timestamps are stamped at publish.
"""
from __future__ import annotations

import datetime
from typing import Any

from mmate_fast._ext import load
from mmate_fast.stageflow._envelopes import (
    PAYLOAD_TYPE_INITIAL,
    PAYLOAD_TYPE_RAW,
    STAGE_RESULT_TYPE,
    WORKFLOW_STATE_TYPE,
    CompensationMessageEnvelope,
    FlowMessageEnvelope,
    zero_checkpoint,
)
from mmate_fast.stageflow._events import (
    EVENT_SOURCE,
    StageCompletedEvent,
    WorkflowCompensatedEvent,
    WorkflowCompletedEvent,
    WorkflowFailedEvent,
)
from mmate_fast.stageflow._gotime import ZERO_NS, ZERO_TIME, format_time, now_ns, parse_time
from mmate_fast.stageflow._state import (
    CompensationResult,
    StageResult,
    WorkflowState,
    add_stage_result,
    begin_stage,
    decode_result,
    decode_state,
    encode_result,
    encode_state,
    mark_compensated,
    mark_completed,
    mark_failed,
)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_new = object.__new__
_new_id = load("envelope").new_id
_SECOND = datetime.timedelta(seconds=1)

#: Go's default stage queue prefix (``WithStageQueuePrefix`` changes it)
DEFAULT_PREFIX = "stageflow."


def stage_queue(workflow_id: str, index: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The queue of stage ``index``: ``{prefix}{workflowId}.stage{index}``."""
    return f"{prefix}{workflow_id}.stage{index}"


def compensation_queue(workflow_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The compensation queue of a workflow: ``{prefix}compensation.{workflowId}``."""
    return f"{prefix}compensation.{workflow_id}"



def flow_message(state: WorkflowState, *, stage_index: int, stage_name: str, next_queue: str | None,
                 payload: Any, payload_type: str | None = None,
                 state_json: str | None = None) -> FlowMessageEnvelope:
    """The FlowMessageEnvelope that sends ``state`` to stage ``stage_index`` (Go's
    ``publishToStage``). ``next_queue``: the stage i+1 queue, None on the last stage; ``payload``:
    the stage input (the initial data, then passed on unchanged); ``payload_type`` defaults to what
    Go writes (``map[string]interface {}`` at stage 0, ``json.RawMessage`` after); ``state_json``:
    ``encode_state(state)`` when the caller has it (a hop's ``_outcome.advance``)."""
    if payload_type is None:
        payload_type = PAYLOAD_TYPE_INITIAL if stage_index == 0 else PAYLOAD_TYPE_RAW
    # the dataclass __init__ (keyword arguments, two default factories) skipped: every field set at
    # once, in the class's field order, as its defaults would (tests compare with the constructor)
    m = _new(FlowMessageEnvelope)
    m.__dict__ = {
        "id": _new_id(), "timestamp": None, "correlation_id": None, "payload": payload,
        "payload_type": payload_type,
        "serialized_workflow_state": state_json if state_json is not None else encode_state(state),
        "workflow_state_type": WORKFLOW_STATE_TYPE, "checkpoint": zero_checkpoint(),
        "current_stage_index": stage_index, "next_stage_queue": next_queue or "",
        "workflow_id": state.workflow_id, "instance_id": state.instance_id, "stage_name": stage_name,
        "_state": None}
    return m


def compensation_message(state: WorkflowState | str, *, failed_stage_index: int, total: int, index: int,
                         stage_to_compensate: str, original: StageResult, original_error: str,
                         failure_ns: int, results: list[CompensationResult]) -> CompensationMessageEnvelope:
    """One step of the compensation chain (Go's ``NewCompensationMessageEnvelope`` and its
    successors). ``state``: the state at failure, or its string as received (passed on unchanged
    along the chain); ``index`` counts down from ``total - 1`` to 0; ``original``: the result of
    ``stage_to_compensate``; ``results``: the compensation results so far (copied)."""
    if isinstance(state, str):
        text, st = state, decode_state(state)
    else:
        text, st = encode_state(state), state
    return CompensationMessageEnvelope(
        workflow_id=st.workflow_id, instance_id=st.instance_id, failed_stage_index=failed_stage_index,
        compensation_index=index, stage_to_compensate=stage_to_compensate, total_compensations=total,
        serialized_workflow_state=text, serialized_original_result=encode_result(original),
        original_result_type=STAGE_RESULT_TYPE, original_error=original_error, failure_ns=failure_ns,
        compensation_results=list(results))


def compensation_plan(state: WorkflowState, failed_stage_index: int) -> list[StageResult]:
    """The results Go compensates after stage ``failed_stage_index`` failed, in the order it
    compensates them (walking back from the stage just before the failure), as Go picks them:
    ``total`` = number of ``completed`` results among ``stageResults[:failed_stage_index]``, step
    ``k`` (``index`` = total-1 .. 0) undoes ``stageResults[failed_stage_index - 1 - (total - 1 - k)]``.
    Empty: nothing to compensate, no message and no compensated event."""
    results = state.stage_results
    total = sum(1 for r in results[:failed_stage_index] if r.status == "completed")
    plan = []
    for k in range(total - 1, -1, -1):
        i = failed_stage_index - 1 - (total - 1 - k)
        if 0 <= i < len(results):
            plan.append(results[i])
    return plan


def compensation_start(state: WorkflowState, *, failed_stage_index: int, original_error: str,
                       failure_ns: int) -> CompensationMessageEnvelope | None:
    """The first compensation message after a required stage failed (``state`` after
    ``mark_failed``), or None when no earlier stage completed."""
    plan = compensation_plan(state, failed_stage_index)
    if not plan:
        return None
    total = len(plan)
    return compensation_message(state, failed_stage_index=failed_stage_index, total=total, index=total - 1,
                                stage_to_compensate=plan[0].stage_id, original=plan[0],
                                original_error=original_error, failure_ns=failure_ns, results=[])


def compensation_next(message: CompensationMessageEnvelope,
                      results: list[CompensationResult]) -> CompensationMessageEnvelope | None:
    """The step after ``message`` (``compensationIndex - 1``), same state string and failure data,
    with ``results`` so far; None when ``message`` was the last step (index 0)."""
    index = message.compensation_index - 1
    if index < 0:
        return None
    st = message.state
    i = message.failed_stage_index - 1 - (message.total_compensations - 1 - index)
    if not 0 <= i < len(st.stage_results):
        return None
    original = st.stage_results[i]
    nxt = CompensationMessageEnvelope(
        workflow_id=message.workflow_id, instance_id=message.instance_id,
        failed_stage_index=message.failed_stage_index, compensation_index=index,
        stage_to_compensate=original.stage_id, total_compensations=message.total_compensations,
        serialized_workflow_state=message.serialized_workflow_state,
        serialized_original_result=encode_result(original), original_result_type=STAGE_RESULT_TYPE,
        original_error=message.original_error, failure_ns=message.failure_ns,
        compensation_results=list(results))
    nxt._state = st
    return nxt


# --------------------------------------------------------------------------- events
def _event_base(state: WorkflowState) -> dict[str, Any]:
    return {"aggregate_id": state.instance_id, "sequence": state.version, "source": EVENT_SOURCE,
            "workflow_id": state.workflow_id, "instance_id": state.instance_id}


def stage_completed_event(state: WorkflowState, result: StageResult, *, stage_index: int,
                          total_stages: int) -> StageCompletedEvent:
    """Go's ``NewStageCompletedEvent`` (state after the result was added; sent only for a
    ``completed`` result)."""
    end = result.end_ns if result.end_ns is not None else result.start_ns + result.duration_ns
    return StageCompletedEvent(
        **_event_base(state), stage_id=result.stage_id, stage_index=stage_index,
        stage_name=result.stage_id, status=result.status, start_ns=result.start_ns, end_ns=end,
        duration_ns=result.duration_ns, data=result.data, error=result.error,
        current_stage=stage_index + 1, total_stages=total_stages)


def workflow_completed_event(state: WorkflowState, *, workflow_name: str,
                             total_stages: int) -> WorkflowCompletedEvent:
    """Go's ``NewWorkflowCompletedEvent`` (state after ``mark_completed``); ``duration`` is
    ``endTime - startTime``."""
    end = state.end_ns if state.end_ns is not None else state.last_modified_ns
    counts = {"completed": 0, "failed": 0, "skipped": 0}
    for r in state.stage_results:
        if r.status in counts:
            counts[r.status] += 1
    error = last_failed = None
    if state.status == "failed" and state.error_message:
        error = state.error_message
        last_failed = next((r.stage_id for r in reversed(state.stage_results) if r.status == "failed"), None)
    return WorkflowCompletedEvent(
        **_event_base(state), workflow_name=workflow_name, status=state.status, start_ns=state.start_ns,
        end_ns=end, duration_ns=end - state.start_ns, total_stages=total_stages,
        completed_stages=counts["completed"], failed_stages=counts["failed"],
        skipped_stages=counts["skipped"], stage_results=list(state.stage_results),
        final_data=dict(state.global_data), error=error, last_failed_stage=last_failed)


def workflow_failed_event(state: WorkflowState, *, workflow_name: str, failed_stage_id: str,
                          failed_stage_index: int, error: str, failure_ns: int,
                          total_stages: int) -> WorkflowFailedEvent:
    """Go's ``NewWorkflowFailedEvent`` (state after ``mark_failed``): ``completedStages`` is the
    number of results so far, ``compensationExecuted`` false; ``duration`` = failure - start."""
    return WorkflowFailedEvent(
        **_event_base(state), workflow_name=workflow_name, failed_stage_id=failed_stage_id,
        failed_stage_index=failed_stage_index, error=error, start_ns=state.start_ns, failure_ns=failure_ns,
        duration_ns=failure_ns - state.start_ns, completed_stages=len(state.stage_results),
        total_stages=total_stages, stage_results=list(state.stage_results),
        state_data=dict(state.global_data), compensation_executed=False)


def _seconds_ns(ts: datetime.datetime | None) -> int:
    if ts is None:
        return now_ns() // 1_000_000_000 * 1_000_000_000
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=datetime.UTC)
    return (ts - _EPOCH) // _SECOND * 1_000_000_000


def workflow_compensated_event(state: WorkflowState, *, workflow_name: str,
                               message: CompensationMessageEnvelope, results: list[CompensationResult],
                               end_ns: int) -> WorkflowCompensatedEvent:
    """The event after the last compensation step (state after ``mark_compensated``):
    ``compensationStartTime`` is ``message``'s envelope timestamp (whole seconds; now when it has
    none), ``failureTime`` its ``failureTimestamp``, ``compensationDuration`` the first result's
    start to the last result's start + duration."""
    counts = {"completed": 0, "failed": 0, "skipped": 0}
    for r in results:
        if r.status in counts:
            counts[r.status] += 1
    duration = 0
    if results:  # on the durations, not the printed times: Go measures on its monotonic clock
        duration = results[-1].start_ns + results[-1].duration_ns - results[0].start_ns
    return WorkflowCompensatedEvent(
        **_event_base(state), workflow_name=workflow_name, original_error=message.original_error,
        failure_ns=message.failure_ns, compensation_start_ns=_seconds_ns(message.timestamp),
        compensation_end_ns=end_ns, compensation_duration_ns=duration,
        total_compensations=message.total_compensations, successful_compensations=counts["completed"],
        failed_compensations=counts["failed"], skipped_compensations=counts["skipped"],
        compensation_results=list(results), failed_stage_index=message.failed_stage_index,
        workflow_data=dict(state.global_data))


__all__ = [
    "DEFAULT_PREFIX",
    "EVENT_SOURCE",
    "PAYLOAD_TYPE_INITIAL",
    "PAYLOAD_TYPE_RAW",
    "STAGE_RESULT_TYPE",
    "WORKFLOW_STATE_TYPE",
    "ZERO_NS",
    "ZERO_TIME",
    "CompensationMessageEnvelope",
    "CompensationResult",
    "FlowMessageEnvelope",
    "StageCompletedEvent",
    "StageResult",
    "WorkflowCompensatedEvent",
    "WorkflowCompletedEvent",
    "WorkflowFailedEvent",
    "WorkflowState",
    "add_stage_result",
    "begin_stage",
    "compensation_message",
    "compensation_next",
    "compensation_plan",
    "compensation_queue",
    "compensation_start",
    "decode_result",
    "decode_state",
    "encode_result",
    "encode_state",
    "flow_message",
    "format_time",
    "mark_compensated",
    "mark_completed",
    "mark_failed",
    "now_ns",
    "parse_time",
    "stage_completed_event",
    "stage_queue",
    "workflow_compensated_event",
    "workflow_completed_event",
    "workflow_failed_event",
    "zero_checkpoint",
]
