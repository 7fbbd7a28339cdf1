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
parallel). The message is self-contained, as Go's is: one for an instance the state store does not
know (a Go engine, or another process with its own store, ran the failing stage) runs when it holds
together (``check_consistent``) and its state at failure is saved; what does not hold together is
refused with a reason. Each step's result is claimed in the store, so a duplicated compensation
message does not run a handler twice.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from mmate_fast.errors import BadFlowMessageError, FlowError, StageIndexError, UnknownWorkflowError
from mmate_fast.stageflow import _wire
from mmate_fast.stageflow._context import ContextCodec
from mmate_fast.stageflow._hops import read_state
from mmate_fast.stageflow._lifecycle import WORKFLOW_COMPENSATED
from mmate_fast.stageflow._outcome import compensation_key
from mmate_fast.stageflow._runner import call_compensation, error_text
from mmate_fast.stageflow._runtime import Runtime
from mmate_fast.stageflow._wire import (
    CompensationMessageEnvelope,
    CompensationResult,
    StageResult,
    WorkflowState,
)
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
        state = read_state(msg)
        completed = check_consistent(wf, msg, state)
        try:
            original = _wire.decode_result(msg.serialized_original_result)
        except FlowError as exc:
            raise BadFlowMessageError(
                f"serializedOriginalResult does not decode: {exc}", "bad-flow-state") from exc
        record = await rt.store.get(msg.instance_id)
        if record is None or record.version < state.version:
            # the message is self-contained (Go's): the state at failure is in it; a store that has not
            # seen the instance (a Go engine or another process ran the failing stage) learns it here
            await rt.save(state)
        stage = wf.stage_by_id(msg.stage_to_compensate)
        assert stage is not None
        k = msg.compensation_index
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
        end_ns = time.time_ns()
        await rt.save(state)  # before the event: whoever hears it finds the final state stored
        rt.finished(state)
        if WORKFLOW_COMPENSATED in rt.events:
            await rt.send([], [_wire.workflow_compensated_event(
                state, workflow_name=wf.name, message=msg, results=results, end_ns=end_ns)])

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


def check_consistent(wf: Workflow, msg: CompensationMessageEnvelope,
                     state: WorkflowState) -> list[StageResult]:
    """Refuse a compensation message that does not hold together (BadFlowMessageError /
    StageIndexError, each with its dead-letter reason); returns the state's completed results.

    Go's compensation message is self-contained, so it is judged on its own, whether or not the store
    knows the instance: the state names the message's instance and the queue's workflow, it is
    ``failed``, ``failedStageIndex`` is a stage of the workflow, ``stageToCompensate`` is a stage with a
    ``completed`` result in the state, and ``compensationIndex`` is a step of the chain."""
    who = f"compensation message for instance {msg.instance_id} of workflow {wf.id!r}"
    if state.instance_id != msg.instance_id or state.workflow_id != wf.id:
        raise BadFlowMessageError(
            f"{who}: the state names workflow {state.workflow_id!r} / instance {state.instance_id!r}, "
            f"the message {msg.workflow_id!r} / {msg.instance_id!r}", "flow-id-mismatch")
    if state.status != "failed":
        raise BadFlowMessageError(f"{who}: its state is {state.status!r}, not 'failed': only a failed flow "
                                  "is compensated", "flow-not-failed")
    n = len(wf.stages)
    if not 0 <= msg.failed_stage_index < n:
        raise StageIndexError(f"{who}: failedStageIndex {msg.failed_stage_index} is out of range (the "
                              f"workflow has stages 0..{n - 1})")
    if wf.stage_by_id(msg.stage_to_compensate) is None:
        raise BadFlowMessageError(
            f"{who}: the workflow has no stage {msg.stage_to_compensate!r} to compensate", "unknown-stage")
    completed = [r for r in state.stage_results if r.status == "completed"]
    if all(r.stage_id != msg.stage_to_compensate for r in completed):
        raise BadFlowMessageError(
            f"{who}: stage {msg.stage_to_compensate!r} has no completed result in the state: there is "
            "nothing of it to compensate", "stage-not-completed")
    k = msg.compensation_index
    if not 0 <= k < max(len(completed), msg.total_compensations):
        raise BadFlowMessageError(f"{who}: compensationIndex {k} is out of range (totalCompensations "
                                  f"{msg.total_compensations}, {len(completed)} completed stages)",
                                  "compensation-index")
    return completed


__all__ = ["CompensationHandler", "check_consistent"]
