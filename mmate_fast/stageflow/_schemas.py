"""JSON Schemas of StageFlow's payloads as Go writes them (wire spec §8.2-§8.5), for the contracts'
``__mmate_schema__`` hook: the contract classes hold times as ``int`` nanoseconds and have
hand-written codecs, so their fields do not describe the wire; these schemas do. Keys a Go sender
omits when empty (``omitempty``) are not required; unknown keys are allowed."""
from __future__ import annotations

from typing import Any

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
ANY: dict[str, Any] = {}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
NS: dict[str, Any] = {"type": "integer", "description": "duration in nanoseconds (Go time.Duration)"}
MAP: dict[str, Any] = {"type": ["object", "null"]}


def obj(props: dict[str, dict[str, Any]], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object schema; every property is required except ``optional`` ones."""
    out: dict[str, Any] = {"type": "object", "properties": props}
    required = [k for k in props if k not in optional]
    if required:
        out["required"] = required
    return out


STAGE_RESULT = obj({"stageId": STR, "status": STR, "data": MAP, "error": STR, "startTime": TIME,
                    "endTime": TIME, "duration": NS}, optional=("data", "error", "endTime"))
COMPENSATION_RESULT = obj({"stageId": STR, "compensationIndex": INT, "status": STR, "startTime": TIME,
                           "endTime": TIME, "duration": NS, "error": STR, "data": MAP},
                          optional=("endTime", "error", "data"))
_RESULTS: dict[str, Any] = {"type": ["array", "null"], "items": STAGE_RESULT}
_EVENT = {"aggregateId": STR, "sequence": INT, "source": STR}

FLOW_MESSAGE = obj({
    "payload": ANY, "payloadType": STR, "serializedWorkflowState": STR, "workflowStateType": STR,
    "checkpoint": MAP, "currentStageIndex": INT, "nextStageQueue": STR, "workflowId": STR,
    "instanceId": STR, "stageName": STR}, optional=("nextStageQueue",))
COMPENSATION_MESSAGE = obj({
    "workflowId": STR, "instanceId": STR, "failedStageIndex": INT, "compensationIndex": INT,
    "stageToCompensate": STR, "totalCompensations": INT, "serializedWorkflowState": STR,
    "workflowStateType": STR, "serializedOriginalResult": STR, "originalResultType": STR,
    "originalError": STR, "failureTimestamp": TIME,
    "compensationResults": {"type": ["array", "null"], "items": COMPENSATION_RESULT},
    "nextCompensationQueue": STR}, optional=("nextCompensationQueue",))
STAGE_COMPLETED = obj({
    **_EVENT, "workflowId": STR, "instanceId": STR, "stageId": STR, "stageIndex": INT, "stageName": STR,
    "status": STR, "startTime": TIME, "endTime": TIME, "duration": NS, "data": MAP, "error": STR,
    "currentStage": INT, "totalStages": INT}, optional=("source", "data", "error"))
WORKFLOW_COMPLETED = obj({
    **_EVENT, "workflowId": STR, "workflowName": STR, "instanceId": STR, "status": STR, "startTime": TIME,
    "endTime": TIME, "duration": NS, "totalStages": INT, "completedStages": INT, "failedStages": INT,
    "skippedStages": INT, "stageResults": _RESULTS, "finalData": MAP, "error": STR, "lastFailedStage": STR},
    optional=("source", "error", "lastFailedStage"))
WORKFLOW_FAILED = obj({
    **_EVENT, "workflowId": STR, "workflowName": STR, "instanceId": STR, "failedStageId": STR,
    "failedStageIndex": INT, "error": STR, "startTime": TIME, "failureTime": TIME, "duration": NS,
    "completedStages": INT, "totalStages": INT, "stageResults": _RESULTS, "stateData": MAP,
    "compensationExecuted": BOOL, "compensationResults": {"type": ["array", "null"], "items": STR}},
    optional=("source", "compensationResults"))
WORKFLOW_COMPENSATED = obj({
    **_EVENT, "workflowId": STR, "workflowName": STR, "instanceId": STR, "originalError": STR,
    "failureTime": TIME, "compensationStartTime": TIME, "compensationEndTime": TIME,
    "compensationDuration": NS, "totalCompensations": INT, "successfulCompensations": INT,
    "failedCompensations": INT, "skippedCompensations": INT,
    "compensationResults": {"type": ["array", "null"], "items": COMPENSATION_RESULT},
    "failedStageIndex": INT, "workflowData": MAP}, optional=("source",))

__all__ = ["COMPENSATION_MESSAGE", "FLOW_MESSAGE", "STAGE_COMPLETED", "WORKFLOW_COMPENSATED",
           "WORKFLOW_COMPLETED", "WORKFLOW_FAILED"]
