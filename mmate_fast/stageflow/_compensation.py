"""Compensation messages: one ``CompensationMessageEnvelope`` on ``{prefix}compensation.{workflowId}``
undoes one completed stage, walking back from the stage before the failure (wire spec §8.4).

The handler of ``stageToCompensate`` runs (``fn(ctx, result)`` with the context at failure and that
stage's StageResult; no handler: ``skipped``; an error: ``failed``, and the chain goes on), its
CompensationResult is appended, and while ``compensationIndex > 0`` the next message goes out for the
completed stage before it. After index 0: status ``compensated``, version+1,
``WorkflowCompensatedEvent``.

Go picks the next stage as ``stageResults[failedStageIndex-1-(total-1-k)]``, assuming one completed
result per earlier stage; we walk the completed results themselves (the same stages when every
earlier stage completed; correct when an optional stage failed or was skipped, or stages ran in
parallel). A compensation message for an instance the state store does not know is refused
(``unknown-instance``); each step's result is claimed in the store, so a duplicated compensation
message does not run a handler twice.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from mmate_fast.errors import BadFlowMessageError, FlowError, UnknownInstanceError, UnknownWorkflowError
from mmate_fast.stageflow import _wire
from mmate_fast.stageflow._context import ContextCodec
from mmate_fast.stageflow._hops import read_state
from mmate_fast.stageflow._outcome import compensation_key, stage_key
from mmate_fast.stageflow._runner import call_compensation, error_text
from mmate_fast.stageflow._runtime import Runtime
from mmate_fast.stageflow._wire import CompensationMessageEnvelope, CompensationResult, StageResult
from mmate_fast.stageflow.workflow import Workflow

log = logging.getLogger("mmate_fast.stageflow")


class CompensationHandler:
    """Runs the compensation messages of one workflow for one engine."""

    def __init__(self, rt: Runtime, wf: Workflow, *, idempotent: bool = True) -> None:
        self.rt = rt
        self.wf = wf
        self.codec = ContextCodec(wf.context)
        self.idempotent = idempotent

    async def handle(self, msg: Any, redelivered: bool = False) -> None:
        wf = self.wf
        rt = self.rt
        if not isinstance(msg, CompensationMessageEnvelope):
            raise BadFlowMessageError(f"a {type(msg).__name__} arrived on compensation queue "
                                      f"{rt.compensation_queue(wf.id)}: only CompensationMessageEnvelope "
                                      "belongs there", "wrong-message-type")
        if msg.workflow_id != wf.id:
            raise UnknownWorkflowError(
                f"compensation message for workflow {msg.workflow_id!r} arrived on the "
                f"compensation queue of workflow {wf.id!r}")
        state = read_state(msg.serialized_workflow_state)
        if state.instance_id != msg.instance_id or state.workflow_id != wf.id:
            raise BadFlowMessageError(
                f"the state names workflow {state.workflow_id!r} / instance {state.instance_id!r}, "
                f"the message "
                f"{msg.workflow_id!r} / {msg.instance_id!r}", "flow-id-mismatch")
        record = await rt.store.get(msg.instance_id)
        if record is None and await rt.store.stage_result(msg.instance_id,
                                                          stage_key(msg.failed_stage_index)) is None:
            raise UnknownInstanceError(f"compensation message for instance {msg.instance_id} of workflow "
                                       f"{wf.id!r}, which the state store does not know")
        stage = wf.stage_by_id(msg.stage_to_compensate)
        if stage is None:
            raise BadFlowMessageError(
                f"workflow {wf.id!r} has no stage {msg.stage_to_compensate!r} to compensate",
                "unknown-stage")
        k = msg.compensation_index
        completed = [r for r in state.stage_results if r.status == "completed"]
        if not 0 <= k < max(len(completed), msg.total_compensations):
            raise BadFlowMessageError(f"compensationIndex {k} is out of range (totalCompensations "
                                      f"{msg.total_compensations})", "compensation-index")
        try:
            original = _wire.decode_result(msg.serialized_original_result)
        except FlowError as exc:
            raise BadFlowMessageError(
                f"serializedOriginalResult does not decode: {exc}", "bad-flow-state") from exc
        result, fresh = await self._result(stage.id, k, state, original)
        results = [*msg.compensation_results, result]
        if k > 0:
            if k - 1 >= len(completed):
                raise BadFlowMessageError(f"no completed stage left to compensate at index {k - 1}",
                                          "compensation-index")
            nxt = completed[k - 1]
            hop = _wire.compensation_message(
                state, failed_stage_index=msg.failed_stage_index, total=msg.total_compensations, index=k - 1,
                stage_to_compensate=nxt.stage_id, original=nxt, original_error=msg.original_error,
                failure_ns=msg.failure_ns, results=results)
            await rt.send([(rt.compensation_queue(wf.id), hop)])
            return
        if not fresh and record is not None and record.status == "compensated":
            return  # a duplicate of the last step: already compensated
        _wire.mark_compensated(state, now_ns=time.time_ns())
        event = _wire.workflow_compensated_event(state, workflow_name=wf.name, message=msg, results=results,
                                                 end_ns=time.time_ns())
        await rt.send([], [event])
        await rt.save(state)
        rt.finished(state)

    async def _result(self, stage_id: str, k: int, state: Any,
                      original: StageResult) -> tuple[CompensationResult, bool]:
        """Run the compensation of ``stage_id`` (or reuse the claimed result of step ``k``)."""
        store = self.rt.store
        key = compensation_key(k)
        if self.idempotent:
            stored = await store.stage_result(state.instance_id, key)
            if stored is not None:
                return CompensationResult.from_go(orjson.loads(stored)), False
        result = await self._run(stage_id, k, state, original)
        if self.idempotent:
            text = orjson.dumps(result.to_go()).decode()
            stored = await store.claim_stage(state.instance_id, key, text)
            if stored != text:
                return CompensationResult.from_go(orjson.loads(stored)), False
        return result, True

    async def _run(self, stage_id: str, k: int, state: Any, original: StageResult) -> CompensationResult:
        stage = self.wf.stage_by_id(stage_id)
        assert stage is not None
        start = time.time_ns()
        if stage.compensation is None:
            return CompensationResult(stage_id, k, "skipped", start_ns=start, end_ns=start, duration_ns=0)
        t0 = time.perf_counter_ns()
        status, error = "completed", None
        try:
            await call_compensation(stage, self.codec.build(state.global_data), original)
        except Exception as exc:
            status, error = "failed", error_text(exc)
            log.warning("compensation of stage %r of %s failed: %s", stage_id, state.instance_id, error)
        duration = time.perf_counter_ns() - t0
        return CompensationResult(stage_id, k, status, start_ns=start, end_ns=start + duration,
                                  duration_ns=duration, error=error)


__all__ = ["CompensationHandler"]
