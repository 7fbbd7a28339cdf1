"""StageFlow's two message contracts, ``FlowMessageEnvelope`` (one per stage hop) and
``CompensationMessageEnvelope`` (one per compensation step), as Go writes them (wire spec §8.2,
§8.4). Both are registered Mmate contracts of kind *message*: ``Client.publish()`` sends them with
Go's 11 standard headers and no ``x-message-kind``; exchange ``""``, routing key = the target queue.

Their payload codecs are hand-written (no per-call reflection) and strict: a field of the wrong JSON
type raises FlowWireError; a ``serializedWorkflowState`` that is not a Go WorkflowState raises
FlowStateError (both ContractErrors: the consumer dead-letters the message and goes on). Decoding a
FlowMessageEnvelope decodes its state once; ``.state`` gives it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mmate_fast._ext import load
from mmate_fast.contracts import Message, contract_plan
from mmate_fast.errors import FlowStateError, FlowWireError
from mmate_fast.stageflow import _schemas
from mmate_fast.stageflow._gotime import ZERO_NS, ZERO_TIME, format_time
from mmate_fast.stageflow._read import Bad, envelope_time, r_int, r_list, r_str, r_time, show
from mmate_fast.stageflow._state import (
    CompensationResult,
    StageResult,
    WorkflowState,
    decode_result,
    decode_state,
)

_fs = load("flowstate")

#: ``workflowStateType`` / ``originalResultType`` as Go writes them
WORKFLOW_STATE_TYPE = "WorkflowState"
STAGE_RESULT_TYPE = "StageResult"
#: Go's ``%T`` of the stage input: the initial map at stage 0, the raw JSON after (Go 1.24 build;
#: other toolchains print other names, so nothing reads it)
PAYLOAD_TYPE_INITIAL = "map[string]interface {}"
PAYLOAD_TYPE_RAW = "json.RawMessage"


def zero_checkpoint() -> dict[str, Any]:
    """Go's zero ``ProcessingCheckpoint`` as it is always on the wire."""
    return {"lastUpdate": ZERO_TIME, "retryCount": 0, "stageId": "", "stepCompleted": False}


@dataclass
class FlowMessageEnvelope(Message):
    """A stage hop: the stage input (``payload``) and the whole workflow state as a JSON string."""

    __mmate_schema__: ClassVar[dict[str, Any]] = _schemas.FLOW_MESSAGE

    payload: Any = None
    payload_type: str = PAYLOAD_TYPE_INITIAL
    serialized_workflow_state: str = ""
    workflow_state_type: str = WORKFLOW_STATE_TYPE
    checkpoint: dict[str, Any] = field(default_factory=zero_checkpoint)
    current_stage_index: int = 0
    next_stage_queue: str = ""
    workflow_id: str = ""
    instance_id: str = ""
    stage_name: str = ""
    _state: WorkflowState | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def state(self) -> WorkflowState:
        """The decoded ``serializedWorkflowState`` (decoded once; raises FlowStateError)."""
        st = self._state
        if st is None:
            st = self._state = decode_state(self.serialized_workflow_state)
        return st


@dataclass
class CompensationMessageEnvelope(Message):
    """One compensation step: which stage to undo, the state at failure, the results so far."""

    __mmate_schema__: ClassVar[dict[str, Any]] = _schemas.COMPENSATION_MESSAGE

    workflow_id: str = ""
    instance_id: str = ""
    failed_stage_index: int = 0
    compensation_index: int = 0
    stage_to_compensate: str = ""
    total_compensations: int = 0
    serialized_workflow_state: str = ""
    workflow_state_type: str = WORKFLOW_STATE_TYPE
    serialized_original_result: str = ""
    original_result_type: str = ""
    original_error: str = ""
    failure_ns: int = ZERO_NS
    compensation_results: list[CompensationResult] = field(default_factory=list)
    next_compensation_queue: str = ""
    _state: WorkflowState | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def state(self) -> WorkflowState:
        """The decoded state at failure (decoded once; raises FlowStateError)."""
        st = self._state
        if st is None:
            st = self._state = decode_state(self.serialized_workflow_state)
        return st

    def original_result(self) -> StageResult:
        """The decoded ``serializedOriginalResult`` (raises FlowStateError)."""
        return decode_result(self.serialized_original_result)


# --------------------------------------------------------------------------- codecs
def _encode_flow(m: FlowMessageEnvelope) -> dict[str, Any]:
    d = {"payload": m.payload, "payloadType": m.payload_type,
         "serializedWorkflowState": m.serialized_workflow_state, "workflowStateType": m.workflow_state_type,
         "checkpoint": m.checkpoint, "currentStageIndex": m.current_stage_index,
         "workflowId": m.workflow_id, "instanceId": m.instance_id, "stageName": m.stage_name}
    if m.next_stage_queue:
        d["nextStageQueue"] = m.next_stage_queue
    return d


#: the string fields of a FlowMessageEnvelope payload, read in one call on the fast path
_FLOW_STRS = ("payloadType", "serializedWorkflowState", "workflowStateType", "nextStageQueue", "workflowId",
              "instanceId", "stageName")
_read_strs = _fs.read_strs
_new = object.__new__


def _decode_flow(p: dict[str, Any], id: str, type: str, ts: str, cid: str | None) -> FlowMessageEnvelope:
    strs = _read_strs(p, _FLOW_STRS)
    checkpoint = p.get("checkpoint")
    index = p.get("currentStageIndex")
    if (strs is not None and checkpoint.__class__ is dict and index.__class__ is int
            and p.get("serializedWorkflowState").__class__ is str):  # the plain form, in fewer calls
        # the dataclass __init__ (14 keyword arguments, a default factory) skipped: every field set
        # at once, in the class's field order (tests compare with the general path below)
        try:  # _state_of, inlined (one frame fewer per hop)
            state = decode_state(strs[1])
        except FlowStateError as exc:
            raise FlowStateError(f"FlowMessageEnvelope {id}: {exc}") from None
        m = _new(FlowMessageEnvelope)
        m.__dict__ = {
            "id": id, "timestamp": envelope_time(ts), "correlation_id": cid or None,
            "payload": p.get("payload"), "payload_type": strs[0], "serialized_workflow_state": strs[1],
            "workflow_state_type": strs[2], "checkpoint": checkpoint, "current_stage_index": index,
            "next_stage_queue": strs[3], "workflow_id": strs[4], "instance_id": strs[5],
            "stage_name": strs[6], "_state": state}
        return m
    try:
        checkpoint = p.get("checkpoint")
        if checkpoint is None:
            checkpoint = zero_checkpoint()
        elif checkpoint.__class__ is not dict:
            raise Bad(f"checkpoint: expected an object, got {show(checkpoint)}")
        if p.get("serializedWorkflowState").__class__ is not str:
            raise Bad("serializedWorkflowState: expected a string holding the workflow state JSON, got "
                      f"{show(p.get('serializedWorkflowState'))}")
        m = FlowMessageEnvelope(
            id=id, timestamp=envelope_time(ts), correlation_id=cid or None, payload=p.get("payload"),
            payload_type=r_str(p, "payloadType"), serialized_workflow_state=p["serializedWorkflowState"],
            workflow_state_type=r_str(p, "workflowStateType"), checkpoint=checkpoint,
            current_stage_index=r_int(p, "currentStageIndex"), next_stage_queue=r_str(p, "nextStageQueue"),
            workflow_id=r_str(p, "workflowId"), instance_id=r_str(p, "instanceId"),
            stage_name=r_str(p, "stageName"))
    except Bad as bad:
        raise FlowWireError(f"FlowMessageEnvelope {id}: {bad}") from None
    m._state = _state_of(m.serialized_workflow_state, "FlowMessageEnvelope", id)
    return m


def _encode_compensation(m: CompensationMessageEnvelope) -> dict[str, Any]:
    d = {"workflowId": m.workflow_id, "instanceId": m.instance_id, "failedStageIndex": m.failed_stage_index,
         "compensationIndex": m.compensation_index, "stageToCompensate": m.stage_to_compensate,
         "totalCompensations": m.total_compensations, "serializedWorkflowState": m.serialized_workflow_state,
         "workflowStateType": m.workflow_state_type, "serializedOriginalResult": m.serialized_original_result,
         "originalResultType": m.original_result_type, "originalError": m.original_error,
         "failureTimestamp": format_time(m.failure_ns),
         "compensationResults": [r.to_go() for r in m.compensation_results]}
    if m.next_compensation_queue:
        d["nextCompensationQueue"] = m.next_compensation_queue
    return d


def _decode_compensation(p: dict[str, Any], id: str, type: str, ts: str,
                         cid: str | None) -> CompensationMessageEnvelope:
    try:
        if p.get("serializedWorkflowState").__class__ is not str:
            raise Bad("serializedWorkflowState: expected a string holding the workflow state JSON, got "
                      f"{show(p.get('serializedWorkflowState'))}")
        results = [CompensationResult.from_go(r) for r in r_list(p, "compensationResults")]
        m = CompensationMessageEnvelope(
            id=id, timestamp=envelope_time(ts), correlation_id=cid or None,
            workflow_id=r_str(p, "workflowId"), instance_id=r_str(p, "instanceId"),
            failed_stage_index=r_int(p, "failedStageIndex"), compensation_index=r_int(p, "compensationIndex"),
            stage_to_compensate=r_str(p, "stageToCompensate"),
            total_compensations=r_int(p, "totalCompensations"),
            serialized_workflow_state=p["serializedWorkflowState"],
            workflow_state_type=r_str(p, "workflowStateType"),
            serialized_original_result=r_str(p, "serializedOriginalResult"),
            original_result_type=r_str(p, "originalResultType"), original_error=r_str(p, "originalError"),
            failure_ns=r_time(p, "failureTimestamp"), compensation_results=results,
            next_compensation_queue=r_str(p, "nextCompensationQueue"))
    except Bad as bad:
        raise FlowWireError(f"CompensationMessageEnvelope {id}: {bad}") from None
    except FlowWireError as exc:
        raise FlowWireError(f"CompensationMessageEnvelope {id}: {exc}") from None
    m._state = _state_of(m.serialized_workflow_state, "CompensationMessageEnvelope", id)
    return m


def _state_of(text: str, type: str, id: str) -> WorkflowState:
    try:
        return decode_state(text)
    except FlowStateError as exc:
        raise FlowStateError(f"{type} {id}: {exc}") from None


def install(cls: type, encode: Callable[[Any], dict[str, Any]],
            decode: Callable[[Any, str, str, str, str | None], Any]) -> None:
    """Give a contract class its hand-written payload codec instead of the generated one:
    ``encode(msg) -> payload`` and ``decode(payload, id, type, timestamp, correlation_id) -> msg``
    (the ``ContractPlan`` hooks ``to_payload`` and ``from_envelope`` call). The plan's compiled
    payload writer (``payload_json`` / ``payload_writer()``, which write the payload from the
    attributes, in ``build``'s general and compiled paths) is turned off: it would bypass ``encode``
    (the Go vector tests catch a writer that comes back)."""
    contract_plan(cls).use_codec(encode, decode)


install(FlowMessageEnvelope, _encode_flow, _decode_flow)
install(CompensationMessageEnvelope, _encode_compensation, _decode_compensation)

__all__ = [
    "PAYLOAD_TYPE_INITIAL", "PAYLOAD_TYPE_RAW", "STAGE_RESULT_TYPE", "WORKFLOW_STATE_TYPE",
    "CompensationMessageEnvelope", "FlowMessageEnvelope", "install", "zero_checkpoint",
]
