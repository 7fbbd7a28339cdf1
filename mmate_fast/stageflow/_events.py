"""StageFlow's lifecycle events as Go publishes them (wire spec §8.5): registered Mmate events, so
``Client.publish()`` sends them to ``mmate.events`` / ``evt.{instanceId}.{Type}`` with
``x-aggregate-id`` (the instance id) and ``x-sequence`` (the state version at that moment).

Times are ``int`` nanoseconds (UTC), durations nanoseconds; results nested in an event are written
as plain objects, so the envelope codec sorts their keys, as Go's payload does. Decoding is strict:
a field of the wrong JSON type raises FlowWireError naming it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from mmate_fast.contracts import Event
from mmate_fast.errors import FlowWireError
from mmate_fast.stageflow import _schemas
from mmate_fast.stageflow._envelopes import install
from mmate_fast.stageflow._gotime import ZERO_NS, format_time
from mmate_fast.stageflow._read import (
    Bad,
    envelope_time,
    r_bool,
    r_dict,
    r_int,
    r_list,
    r_opt_dict,
    r_opt_str,
    r_str,
    r_time,
    show,
)
from mmate_fast.stageflow._state import CompensationResult, StageResult

#: ``source`` of every StageFlow event
EVENT_SOURCE = "stageflow"


@dataclass
class StageCompletedEvent(Event):
    """A stage finished with status ``completed`` (never sent for a failing stage)."""

    __mmate_schema__: ClassVar[dict[str, Any]] = _schemas.STAGE_COMPLETED

    workflow_id: str = ""
    instance_id: str = ""
    stage_id: str = ""
    stage_index: int = 0
    stage_name: str = ""
    status: str = ""
    start_ns: int = ZERO_NS
    end_ns: int = ZERO_NS
    duration_ns: int = 0
    data: dict[str, Any] | None = None
    error: str | None = None
    current_stage: int = 0
    total_stages: int = 0


@dataclass
class WorkflowCompletedEvent(Event):
    """The last stage completed."""

    __mmate_schema__: ClassVar[dict[str, Any]] = _schemas.WORKFLOW_COMPLETED

    workflow_id: str = ""
    workflow_name: str = ""
    instance_id: str = ""
    status: str = ""
    start_ns: int = ZERO_NS
    end_ns: int = ZERO_NS
    duration_ns: int = 0
    total_stages: int = 0
    completed_stages: int = 0
    failed_stages: int = 0
    skipped_stages: int = 0
    stage_results: list[StageResult] = field(default_factory=list)
    final_data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    last_failed_stage: str | None = None


@dataclass
class WorkflowFailedEvent(Event):
    """A required stage failed (``completedStages`` counts every result so far, as Go does)."""

    __mmate_schema__: ClassVar[dict[str, Any]] = _schemas.WORKFLOW_FAILED

    workflow_id: str = ""
    workflow_name: str = ""
    instance_id: str = ""
    failed_stage_id: str = ""
    failed_stage_index: int = 0
    error: str = ""
    start_ns: int = ZERO_NS
    failure_ns: int = ZERO_NS
    duration_ns: int = 0
    completed_stages: int = 0
    total_stages: int = 0
    stage_results: list[StageResult] = field(default_factory=list)
    state_data: dict[str, Any] = field(default_factory=dict)
    compensation_executed: bool = False
    compensation_results: list[str] = field(default_factory=list)


@dataclass
class WorkflowCompensatedEvent(Event):
    """The compensation chain finished."""

    __mmate_schema__: ClassVar[dict[str, Any]] = _schemas.WORKFLOW_COMPENSATED

    workflow_id: str = ""
    workflow_name: str = ""
    instance_id: str = ""
    original_error: str = ""
    failure_ns: int = ZERO_NS
    compensation_start_ns: int = ZERO_NS
    compensation_end_ns: int = ZERO_NS
    compensation_duration_ns: int = 0
    total_compensations: int = 0
    successful_compensations: int = 0
    failed_compensations: int = 0
    skipped_compensations: int = 0
    compensation_results: list[CompensationResult] = field(default_factory=list)
    failed_stage_index: int = 0
    workflow_data: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- codecs
def _base(m: Event) -> dict[str, Any]:
    d: dict[str, Any] = {"aggregateId": m.aggregate_id, "sequence": m.sequence}
    if m.source:
        d["source"] = m.source
    return d


def _base_kw(p: dict[str, Any], id: str, ts: str, cid: str | None) -> dict[str, Any]:
    return {"id": id, "timestamp": envelope_time(ts), "correlation_id": cid or None,
            "aggregate_id": r_str(p, "aggregateId"), "sequence": r_int(p, "sequence"),
            "source": r_str(p, "source")}


def _results(p: dict[str, Any], key: str) -> list[StageResult]:
    return [StageResult.from_go(r) for r in r_list(p, key)]


def _strings(p: dict[str, Any], key: str) -> list[str]:
    items = r_list(p, key)
    for x in items:
        if x.__class__ is not str:
            raise Bad(f"{key}: expected an array of strings, got an item {show(x)}")
    return items


def _encode_stage(m: StageCompletedEvent) -> dict[str, Any]:
    d = _base(m)
    d.update({"workflowId": m.workflow_id, "instanceId": m.instance_id, "stageId": m.stage_id,
              "stageIndex": m.stage_index, "stageName": m.stage_name, "status": m.status,
              "startTime": format_time(m.start_ns), "endTime": format_time(m.end_ns),
              "duration": m.duration_ns, "currentStage": m.current_stage, "totalStages": m.total_stages})
    if m.data:
        d["data"] = m.data
    if m.error:
        d["error"] = m.error
    return d


def _decode_stage(p: dict[str, Any], id: str, type: str, ts: str, cid: str | None) -> StageCompletedEvent:
    return _guard(type, id, lambda: StageCompletedEvent(
        **_base_kw(p, id, ts, cid), workflow_id=r_str(p, "workflowId"), instance_id=r_str(p, "instanceId"),
        stage_id=r_str(p, "stageId"), stage_index=r_int(p, "stageIndex"), stage_name=r_str(p, "stageName"),
        status=r_str(p, "status"), start_ns=r_time(p, "startTime"), end_ns=r_time(p, "endTime"),
        duration_ns=r_int(p, "duration"), data=r_opt_dict(p, "data"), error=r_opt_str(p, "error"),
        current_stage=r_int(p, "currentStage"), total_stages=r_int(p, "totalStages")))


def _encode_completed(m: WorkflowCompletedEvent) -> dict[str, Any]:
    d = _base(m)
    d.update({"workflowId": m.workflow_id, "workflowName": m.workflow_name, "instanceId": m.instance_id,
              "status": m.status, "startTime": format_time(m.start_ns), "endTime": format_time(m.end_ns),
              "duration": m.duration_ns, "totalStages": m.total_stages, "completedStages": m.completed_stages,
              "failedStages": m.failed_stages, "skippedStages": m.skipped_stages,
              "stageResults": [r.to_go() for r in m.stage_results], "finalData": m.final_data})
    if m.error:
        d["error"] = m.error
    if m.last_failed_stage:
        d["lastFailedStage"] = m.last_failed_stage
    return d


def _decode_completed(p: dict[str, Any], id: str, type: str, ts: str,
                      cid: str | None) -> WorkflowCompletedEvent:
    return _guard(type, id, lambda: WorkflowCompletedEvent(
        **_base_kw(p, id, ts, cid), workflow_id=r_str(p, "workflowId"),
        workflow_name=r_str(p, "workflowName"), instance_id=r_str(p, "instanceId"), status=r_str(p, "status"),
        start_ns=r_time(p, "startTime"), end_ns=r_time(p, "endTime"), duration_ns=r_int(p, "duration"),
        total_stages=r_int(p, "totalStages"), completed_stages=r_int(p, "completedStages"),
        failed_stages=r_int(p, "failedStages"), skipped_stages=r_int(p, "skippedStages"),
        stage_results=_results(p, "stageResults"), final_data=r_dict(p, "finalData"),
        error=r_opt_str(p, "error"), last_failed_stage=r_opt_str(p, "lastFailedStage")))


def _encode_failed(m: WorkflowFailedEvent) -> dict[str, Any]:
    d = _base(m)
    d.update({"workflowId": m.workflow_id, "workflowName": m.workflow_name, "instanceId": m.instance_id,
              "failedStageId": m.failed_stage_id, "failedStageIndex": m.failed_stage_index, "error": m.error,
              "startTime": format_time(m.start_ns), "failureTime": format_time(m.failure_ns),
              "duration": m.duration_ns, "completedStages": m.completed_stages, "totalStages": m.total_stages,
              "stageResults": [r.to_go() for r in m.stage_results], "stateData": m.state_data,
              "compensationExecuted": m.compensation_executed})
    if m.compensation_results:
        d["compensationResults"] = m.compensation_results
    return d


def _decode_failed(p: dict[str, Any], id: str, type: str, ts: str, cid: str | None) -> WorkflowFailedEvent:
    return _guard(type, id, lambda: WorkflowFailedEvent(
        **_base_kw(p, id, ts, cid), workflow_id=r_str(p, "workflowId"),
        workflow_name=r_str(p, "workflowName"), instance_id=r_str(p, "instanceId"),
        failed_stage_id=r_str(p, "failedStageId"), failed_stage_index=r_int(p, "failedStageIndex"),
        error=r_str(p, "error"), start_ns=r_time(p, "startTime"), failure_ns=r_time(p, "failureTime"),
        duration_ns=r_int(p, "duration"), completed_stages=r_int(p, "completedStages"),
        total_stages=r_int(p, "totalStages"), stage_results=_results(p, "stageResults"),
        state_data=r_dict(p, "stateData"), compensation_executed=r_bool(p, "compensationExecuted"),
        compensation_results=_strings(p, "compensationResults")))


def _encode_compensated(m: WorkflowCompensatedEvent) -> dict[str, Any]:
    d = _base(m)
    d.update({"workflowId": m.workflow_id, "workflowName": m.workflow_name, "instanceId": m.instance_id,
              "originalError": m.original_error, "failureTime": format_time(m.failure_ns),
              "compensationStartTime": format_time(m.compensation_start_ns),
              "compensationEndTime": format_time(m.compensation_end_ns),
              "compensationDuration": m.compensation_duration_ns,
              "totalCompensations": m.total_compensations,
              "successfulCompensations": m.successful_compensations,
              "failedCompensations": m.failed_compensations, "skippedCompensations": m.skipped_compensations,
              "compensationResults": [r.to_go() for r in m.compensation_results],
              "failedStageIndex": m.failed_stage_index, "workflowData": m.workflow_data})
    return d


def _decode_compensated(p: dict[str, Any], id: str, type: str, ts: str,
                        cid: str | None) -> WorkflowCompensatedEvent:
    return _guard(type, id, lambda: WorkflowCompensatedEvent(
        **_base_kw(p, id, ts, cid), workflow_id=r_str(p, "workflowId"),
        workflow_name=r_str(p, "workflowName"), instance_id=r_str(p, "instanceId"),
        original_error=r_str(p, "originalError"), failure_ns=r_time(p, "failureTime"),
        compensation_start_ns=r_time(p, "compensationStartTime"),
        compensation_end_ns=r_time(p, "compensationEndTime"),
        compensation_duration_ns=r_int(p, "compensationDuration"),
        total_compensations=r_int(p, "totalCompensations"),
        successful_compensations=r_int(p, "successfulCompensations"),
        failed_compensations=r_int(p, "failedCompensations"),
        skipped_compensations=r_int(p, "skippedCompensations"),
        compensation_results=[CompensationResult.from_go(r) for r in r_list(p, "compensationResults")],
        failed_stage_index=r_int(p, "failedStageIndex"), workflow_data=r_dict(p, "workflowData")))


def _guard(type: str, id: str, build: Any) -> Any:
    """Run a decoder; a wrong field becomes FlowWireError naming the event, its id and the key."""
    try:
        return build()
    except Bad as bad:
        raise FlowWireError(f"{type} {id}: {bad}") from None
    except FlowWireError as exc:  # a nested result (FlowStateError from StageResult.from_go too)
        raise FlowWireError(f"{type} {id}: {exc}") from None


install(StageCompletedEvent, _encode_stage, _decode_stage)
install(WorkflowCompletedEvent, _encode_completed, _decode_completed)
install(WorkflowFailedEvent, _encode_failed, _decode_failed)
install(WorkflowCompensatedEvent, _encode_compensated, _decode_compensated)

__all__ = ["EVENT_SOURCE", "StageCompletedEvent", "WorkflowCompensatedEvent", "WorkflowCompletedEvent",
           "WorkflowFailedEvent"]
