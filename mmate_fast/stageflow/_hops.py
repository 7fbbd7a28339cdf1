"""Stage messages: one ``FlowMessageEnvelope`` on ``{prefix}{workflowId}.stage{N}`` runs stage N and
moves the flow on, exactly as Go's stage consumer does (wire spec §8.3):

* the stage is the queue's (a message whose ``currentStageIndex`` or ``workflowId`` does not match,
  or whose state string does not decode, is refused: ``dlq.{queue}`` with the reason);
* dependencies not completed: a required stage is refused (no compensation), an optional one gets a
  ``skipped`` result;
* success: a ``completed`` result (``data`` merged into ``globalData`` as ``"{stageId}.{key}"``, or the
  typed context's fields), version+1, ``StageCompletedEvent``, then the hop to the next stage — or,
  after the last stage, status ``completed``, version+1, ``WorkflowCompletedEvent`` and no hop;
* an optional stage's failure: a ``failed`` result, and the flow goes on;
* a required stage's failure: status ``failed`` (its own result not appended), version+1,
  ``WorkflowFailedEvent``, the first compensation message if any stage completed; the stage message
  then goes to ``dlq.{queue}`` with reason ``stage-failed`` (Go drops it).

Beyond Go: the outcome of each stage is claimed in the state store before the next hop is published
(see ``_outcome``): a redelivered or duplicated message does not run the handler again, and when the
record shows the flow already moved past it nothing is published twice (no second completion). The
stage that completes the flow claims its outcome and saves the final state in one store call
(``claim_stage_and_save``: one transaction); the save that marks a hop as sent is queued, not
awaited (``Runtime.save(wait=False)``). Stages
of a parallel group run side by side from the same state; the member that finds every member's
outcome claimed decides the join (claimed once) and moves the flow on with the merged results.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any

from mmate_fast.errors import (
    BadFlowMessageError,
    FlowError,
    StageDependencyError,
    StageFailedError,
    StageIndexError,
    UnknownWorkflowError,
)
from mmate_fast.stageflow import _wire
from mmate_fast.stageflow._context import ContextCodec
from mmate_fast.stageflow._later import LaterHop
from mmate_fast.stageflow._lifecycle import STAGE_COMPLETED, WORKFLOW_COMPLETED, WORKFLOW_FAILED
from mmate_fast.stageflow._outcome import Outcome, advance, join_key, stage_key
from mmate_fast.stageflow._runner import call_stage, error_text
from mmate_fast.stageflow._runtime import Runtime
from mmate_fast.stageflow._wire import FlowMessageEnvelope, StageResult, WorkflowState
from mmate_fast.stageflow.workflow import Stage, Workflow

log = logging.getLogger("mmate_fast.stageflow")


def read_state(msg: Any) -> WorkflowState:
    """A message's state (decoded once, by the wire decoder); a corrupt one is refused with reason
    ``bad-flow-state``."""
    try:
        return msg.state
    except FlowError as exc:
        raise BadFlowMessageError(f"serializedWorkflowState does not decode: {exc}",
                                  "bad-flow-state") from exc


class Step:
    """What one stage message (or a parallel join) does to the flow, built before anything is sent
    (a plain class: made once per hop)."""

    __slots__ = ("events", "failed", "final", "hops", "state")

    def __init__(self, state: WorkflowState) -> None:
        self.state = state
        self.events: list[Any] = []
        self.hops: list[tuple[str, Any]] = []
        #: the flow ends with this step (completed, or failed with nothing to compensate)
        self.final = False
        #: (stage index, error text) of the required stage that failed
        self.failed: tuple[int, str] | None = None


class StageHandler:
    """Runs the stage messages of one workflow for one engine (see the module docstring)."""

    def __init__(self, rt: Runtime, wf: Workflow, *, idempotent: bool = True) -> None:
        self.rt = rt
        self.wf = wf
        self.codec = ContextCodec(wf.context)
        self.idempotent = idempotent
        #: the stage queues by index, plus None after the last (the hop's ``nextStageQueue``); made
        #: again if the workflow gained stages
        self._queues: list[str | None] = [None]
        #: (instance, stage index) -> done future of the delivery now handling it here (None until a
        #: duplicate comes: made only then): a concurrent duplicate waits for it and is then acked
        #: without running anything
        self._inflight: dict[tuple[str, int], asyncio.Future[None] | None] = {}
        #: stage index -> its last runs in a row slower than ``_later.INLINE_STAGE_NS`` (at
        #: ``_later.SLOW_RUNS`` it no longer runs inside its claim's store transaction)
        self._slow: dict[int, int] = {}

    async def handle(self, index: int, msg: Any, redelivered: bool = False) -> None:
        """Handle one stage message (the general path; ``handle_now`` takes the common hop at once)."""
        state = self._checked(index, msg)
        await self._guarded(index, msg, state, redelivered)

    def handle_now(self, index: int, msg: Any, redelivered: bool = False) -> Awaitable[None] | None:
        """``handle`` for the stage queue's settle-later route: a hop with a store that answers at once
        (``Runtime.now``), a plain stage (not in a parallel group) that runs for the first time here
        and that does not fail a required stage is taken here and now, and what is returned is the
        confirm of what it published (the next hop is saved as sent when that succeeds); anything
        else returns ``handle``'s coroutine (from where this one left off). A bad message raises at
        once. The subscriber acks the message when the returned awaitable is done."""
        state = self._checked(index, msg)
        now = self.rt.now
        if now is None:
            return self._handle_later(index, msg, state, redelivered)
        stage = self.wf.stages[index]
        key = (state.instance_id, index)
        if key in self._inflight or stage.group is not None or not _plain(stage):
            return self._guarded(index, msg, state, redelivered)
        iid = state.instance_id
        skey = stage_key(index)
        if self.idempotent and now.stage_result_now(iid, skey) is not None:
            return self._guarded(index, msg, state, redelivered)  # a duplicate: the general path
        outcome = self._run_now(stage, state)
        failed = outcome.result.status == "failed" and not stage.optional
        wf = self.wf
        nxt = wf.next_index(index)
        if not failed and nxt < len(wf.stages) and wf.stages[nxt].group is None:  # one hop: _hop_now
            return self._hop_now(index, msg, state, redelivered, outcome, nxt, now, skey)
        if not failed and self.idempotent and STAGE_COMPLETED not in self.rt.events:
            return self._last_now(index, msg, state, redelivered, outcome)  # nxt >= n: completes the flow
        if self.idempotent:
            text = outcome.to_json()
            if not failed and nxt >= len(wf.stages):  # completes the flow
                step = self.step(state, [(index, outcome)], None)
                stored = now.claim_stage_and_save_now(iid, skey, text, self.rt.record(step.state))
                if stored != text:  # another delivery claimed first: go on from the message with its outcome
                    return self._guarded(index, msg, _wire.decode_state(msg.serialized_workflow_state),
                                         redelivered, Outcome.from_json(stored))
                self.rt.finished(step.state)
                return self.rt.send_now(step.hops, step.events)
            stored = now.claim_stage_now(iid, skey, text)
            if stored != text:
                return self._guarded(index, msg, state, redelivered, Outcome.from_json(stored))
        step = self.step(state, [(index, outcome)], msg.payload)
        if failed or step.final:
            return self._guarded(index, msg, state, redelivered, outcome, step)
        self._inflight[key] = None
        try:
            sent = self.rt.send_now(step.hops, step.events)
        except BaseException:
            self._release(key)
            raise
        if sent is None:  # nothing to publish (no hop, no selected event): saved as sent now
            self._release(key)
            self.rt.save_now(step.state)
            return None
        fut = sent if isinstance(sent, asyncio.Future) else asyncio.ensure_future(sent)
        sent_json = step.hops[0][1].serialized_workflow_state if step.hops else None
        fut.add_done_callback(functools.partial(self._hop_sent, key, step.state, sent_json))
        return fut

    def _handle_later(self, index: int, msg: Any, state: WorkflowState, redelivered: bool) -> Awaitable[None]:
        """``handle_now`` on a store that answers with futures (``Runtime.later``: SQLite): a plain
        stage (not in a parallel group) not in flight here takes the hop chained on the store's futures
        (``_later.LaterHop``: no coroutine); anything else, or another store, ``handle``'s coroutine."""
        later = self.rt.later
        stage = self.wf.stages[index]
        key = (state.instance_id, index)
        if (later is None or not self.idempotent or key in self._inflight or stage.group is not None
                or not _plain(stage)):
            return self._guarded(index, msg, state, redelivered)
        self._inflight[key] = None
        try:
            return LaterHop(self, index, msg, state, later).out
        except BaseException:
            self._release(key)
            raise

    def one_hop(self, index: int, nxt: int, state: WorkflowState, payload: Any, text: str | None,
                result: Any) -> tuple[tuple[tuple[str, Any]], list[Any]]:
        """The publishes of a one-call hop from stage ``index`` to ``nxt`` (not a parallel group): the
        stage message carrying the advanced state's string ``text``, and a StageCompletedEvent first
        when that is selected and the stage completed (``_hop_now``'s and ``LaterHop``'s)."""
        wf = self.wf
        n = len(wf.stages)
        queues = self.queue_names()
        queue = queues[nxt]
        assert queue is not None
        hop = _wire.flow_message(state, stage_index=nxt, stage_name=wf.stages[nxt].id,
                                 next_queue=queues[min(wf.next_index(nxt), n)], payload=payload,
                                 payload_type=_wire.PAYLOAD_TYPE_RAW, state_json=text)
        events: list[Any] = []
        if result.status == "completed" and STAGE_COMPLETED in self.rt.events:
            events.append(_wire.stage_completed_event(state, result, stage_index=index, total_stages=n))
        return ((queue, hop),), events

    def _hop_now(self, index: int, msg: Any, state: WorkflowState, redelivered: bool, outcome: Outcome,
                 nxt: int, now: Any, skey: str) -> Awaitable[None] | None:
        """``handle_now``'s common case, a fresh outcome that moves the flow on to one next stage
        (``nxt``, not a parallel group): ``step``'s work without a Step: the state advanced and
        encoded and the claim text made in one call (``_outcome.advance``), the outcome claimed, the
        hop (and a StageCompletedEvent when selected) published; the confirm is returned. ``now``
        and ``skey``: ``handle_now``'s ``rt.now`` and ``stage_key(index)``."""
        rt = self.rt
        iid = state.instance_id
        text, claim = advance(state, outcome, time.time_ns())
        if self.idempotent:
            stored = now.claim_stage_now(iid, skey, claim)
            if stored != claim:  # another delivery claimed first: go on from the message with its outcome
                return self._guarded(index, msg, _wire.decode_state(msg.serialized_workflow_state),
                                     redelivered, Outcome.from_json(stored))
        hops, events = self.one_hop(index, nxt, state, msg.payload, text, outcome.result)
        key = (iid, index)
        self._inflight[key] = None
        try:
            sent = rt.send_now(hops, events)
        except BaseException:
            self._release(key)
            raise
        if sent is None:  # pragma: no cover - a hop is always published
            self._release(key)
            rt.save_now(state, text)
            return None
        fut = sent if isinstance(sent, asyncio.Future) else asyncio.ensure_future(sent)
        fut.add_done_callback(functools.partial(self._hop_sent, key, state, text))
        return fut

    def _last_now(self, index: int, msg: Any, state: WorkflowState, redelivered: bool,
                  outcome: Outcome) -> Awaitable[None] | None:
        """``handle_now``'s last stage (fresh, not failing a required stage; no StageCompletedEvent
        selected: its ``sequence`` is the version before the completion): ``step`` + ``_finish``
        without a Step: the final state and the claim text in one call, claimed and saved in one store
        call, the local waiters woken, the WorkflowCompletedEvent (when selected) published."""
        rt = self.rt
        t = time.time_ns()
        text, claim = advance(state, outcome, t, t)
        stored = rt.now.claim_stage_and_save_now(state.instance_id, stage_key(index), claim,
                                                 rt.record(state, text))
        if stored != claim:  # another delivery claimed first: go on from the message with its outcome
            return self._guarded(index, msg, _wire.decode_state(msg.serialized_workflow_state),
                                 redelivered, Outcome.from_json(stored))
        rt.finished(state)
        if WORKFLOW_COMPLETED not in rt.events:
            return None
        wf = self.wf
        return rt.send_now((), (_wire.workflow_completed_event(state, workflow_name=wf.name,
                                                               total_stages=len(wf.stages)),))

    def _hop_sent(self, key: tuple[str, int], state: WorkflowState, state_json: str | None,
                  fut: asyncio.Future[Any]) -> None:
        """``handle_now``'s publish is done: when confirmed, the new state is saved (the mark that the
        hops went out, as ``execute`` saves it; ``state_json``: the hop's state string, when there is
        one); either way the instance's stage is free again."""
        self._release(key)
        if not fut.cancelled() and fut.exception() is None:
            self.rt.save_now(state, state_json)

    def _release(self, key: tuple[str, int]) -> None:
        done = self._inflight.pop(key)
        if done is not None:
            done.set_result(None)

    async def _guarded(self, index: int, msg: Any, state: WorkflowState, redelivered: bool,
                       outcome: Outcome | None = None, step: Step | None = None) -> None:
        """``_handle`` once per (instance, stage) at a time here: a concurrent duplicate waits for the
        one running and is then done (acked) without running anything. ``outcome`` (and ``step``):
        what ``handle_now`` already has (claimed; not fresh unless ``step`` is given)."""
        key = (state.instance_id, index)
        inflight = self._inflight
        if key in inflight:  # the same stage of the same instance is being handled here: a duplicate
            running = inflight[key]
            if running is None:  # the first duplicate makes the future the others wait for
                running = inflight[key] = asyncio.get_running_loop().create_future()
            await asyncio.shield(running)
            return
        inflight[key] = None
        try:
            if outcome is None:
                await self._handle(index, msg, state, redelivered)
            else:
                await self._go_on(index, msg, state, outcome, step is not None, step)
        finally:
            self._release(key)

    def _checked(self, index: int, msg: Any) -> WorkflowState:
        """The message's state, once the message is known to belong to stage ``index`` of this
        workflow and its instance is running (else the named error: the message goes to the DLQ)."""
        wf = self.wf
        if not isinstance(msg, FlowMessageEnvelope):
            raise BadFlowMessageError(f"a {type(msg).__name__} arrived on stage queue "
                                      f"{self.rt.stage_queue(wf.id, index)}: only FlowMessageEnvelope "
                                      "belongs there",
                                      "wrong-message-type")
        if msg.workflow_id != wf.id:
            raise UnknownWorkflowError(
                f"stage message for workflow {msg.workflow_id!r} arrived on a queue of "
                f"workflow {wf.id!r}: no such workflow is registered for this queue")
        n = len(wf.stages)
        if not 0 <= msg.current_stage_index < n:
            raise StageIndexError(
                f"stage index {msg.current_stage_index} is out of range: workflow {wf.id!r} "
                f"has stages 0..{n - 1}")
        if msg.current_stage_index != index:
            raise StageIndexError(f"stage index {msg.current_stage_index} does not match queue "
                                  f"{self.rt.stage_queue(wf.id, index)} (stage {index})")
        state = read_state(msg)
        if state.workflow_id != wf.id or state.instance_id != msg.instance_id:
            raise BadFlowMessageError(
                f"the state names workflow {state.workflow_id!r} / instance {state.instance_id!r}, "
                f"the message "
                f"{msg.workflow_id!r} / {msg.instance_id!r}", "flow-id-mismatch")
        if state.status != "running":
            raise BadFlowMessageError(f"instance {state.instance_id} is {state.status!r}, not running: "
                                      "a stage message for it cannot run", "flow-not-running")
        return state

    async def _handle(self, index: int, msg: Any, state: WorkflowState, redelivered: bool) -> None:
        wf = self.wf
        stage = wf.stages[index]
        if self.idempotent and stage.group is None:
            stored = await self.rt.store.stage_result(state.instance_id, stage_key(index))
            if stored is not None:
                outcome, fresh = Outcome.from_json(stored), False
            else:
                outcome = await self._run(stage, state)
                text = outcome.to_json()
                if self._ends_flow(stage, outcome):
                    stored = await self._finish(index, state, outcome, text)
                    if stored == text:
                        return
                    state = _wire.decode_state(msg.serialized_workflow_state)  # _finish changed ours
                else:
                    stored = await self.rt.store.claim_stage(state.instance_id, stage_key(index), text)
                fresh = stored == text
                if not fresh:
                    outcome = Outcome.from_json(stored)
        else:
            outcome, fresh = await self._outcome(stage, state)
        if stage.group is None:
            await self._go_on(index, msg, state, outcome, fresh)
            return
        joined = await self._join(stage.group, state, index, outcome)
        if joined is None or (not joined[1] and not redelivered):
            self._raise_if_failed(stage, outcome, fresh)
            return
        outcomes, fresh = joined[0], joined[1]
        step = self.step(state, outcomes, msg.payload)
        if not fresh:
            record = await self.rt.store.get(state.instance_id)
            if record is not None and record.version >= step.state.version:
                return  # a duplicate of a step already taken: nothing to do again
        await self.execute(step)
        self._raise_if_failed(stage, outcome, fresh)

    async def _go_on(self, index: int, msg: Any, state: WorkflowState, outcome: Outcome, fresh: bool,
                     step: Step | None = None) -> None:
        """Move the flow on from stage ``index`` (not in a parallel group) with its ``outcome``:
        nothing when it is a duplicate of a step already taken, else the step (``step``: built
        already) executed; a required stage that failed then raises."""
        if step is None:
            step = self.step(state, [(index, outcome)], msg.payload)
        if not fresh:
            record = await self.rt.store.get(state.instance_id)
            if record is not None and record.version >= step.state.version:
                return  # a duplicate of a step already taken: nothing to do again
        await self.execute(step)
        self._raise_if_failed(self.wf.stages[index], outcome, fresh)

    def _raise_if_failed(self, stage: Stage, outcome: Outcome, fresh: bool) -> None:
        """A required stage that failed (freshly, not a duplicate): its message goes to the DLQ."""
        result = outcome.result
        if fresh and result.status == "failed" and not stage.optional:
            raise StageFailedError(f"required stage {stage.id!r} failed: {result.error}", stage.id,
                                   result.error or "")

    # ------------------------------------------------------------------ running
    async def _outcome(self, stage: Stage, state: WorkflowState) -> tuple[Outcome, bool]:
        """This stage's outcome: the claimed one if there is one (not fresh), else run it and claim."""
        store = self.rt.store
        iid = state.instance_id
        key = stage_key(stage.index)
        if self.idempotent:
            stored = await store.stage_result(iid, key)
            if stored is not None:
                return Outcome.from_json(stored), False
        outcome = await self._run(stage, state)
        if self.idempotent:
            text = outcome.to_json()
            stored = await store.claim_stage(iid, key, text)
            if stored != text:
                return Outcome.from_json(stored), False
        return outcome, True

    def _ends_flow(self, stage: Stage, outcome: Outcome) -> bool:
        """Whether ``outcome`` of ``stage`` (not in a parallel group) completes the flow: the last
        stage, unless it is a required one that failed (that takes the failure path)."""
        if outcome.result.status == "failed" and not stage.optional:
            return False
        return self.wf.next_index(stage.index) >= len(self.wf.stages)

    async def _finish(self, index: int, state: WorkflowState, outcome: Outcome, text: str) -> str:
        """The stage that completes the flow: claim its outcome and save the final state in one store
        call (one transaction where the store can), then wake the local waiters and publish the
        final events; returns the claimed outcome (``text`` when this call won; otherwise nothing was
        saved or sent, and ``state`` holds this call's step: the caller starts again from the message)."""
        step = self.step(state, [(index, outcome)], None)
        stored = await self.rt.claim_and_save(state.instance_id, stage_key(index), text, step.state)
        if stored == text:
            self.rt.finished(step.state)
            await self.rt.send(step.hops, step.events)
        return stored

    async def _run(self, stage: Stage, state: WorkflowState) -> Outcome:
        if _plain(stage):  # a plain function, one attempt, no StageInfo: no coroutine of call_stage's
            return self._run_now(stage, state)
        skipped = self._skipped(stage, state)
        if skipped is not None:
            return skipped
        codec = self.codec
        start = time.time_ns()
        t0 = time.perf_counter_ns()
        try:
            ctx, returned = await call_stage(stage, lambda: codec.build(state.global_data),
                                             workflow_id=state.workflow_id, instance_id=state.instance_id,
                                             state=state)
            data, updates = codec.apply(stage.id, ctx, returned, state.global_data)
        except Exception as exc:
            return _failed(stage, state, exc, start, t0)
        return _completed(stage, data, updates, start, t0)

    def _run_now(self, stage: Stage, state: WorkflowState) -> Outcome:
        """``_run`` of a plain stage (see ``_plain``): called here, at once."""
        if stage.depends_on:
            skipped = self._skipped(stage, state)
            if skipped is not None:
                return skipped
        codec = self.codec
        gd = state.global_data
        start = time.time_ns()
        t0 = time.perf_counter_ns()
        try:
            if codec.typed:
                ctx = codec.build(gd)
                data, updates = codec.apply(stage.id, ctx, stage.fn(ctx), gd)
            else:  # a dict workflow: codec.build and codec.apply's dict case inline (the common one)
                ctx = dict(gd)
                returned = stage.fn(ctx)
                if returned.__class__ is dict:
                    sid = stage.id
                    updates = {f"{sid}.{key}": value for key, value in returned.items()}
                    data = dict(returned) or None
                else:
                    data, updates = codec.apply(stage.id, ctx, returned, gd)
        except Exception as exc:
            return _failed(stage, state, exc, start, t0)
        return _completed(stage, data, updates, start, t0)

    @staticmethod
    def _skipped(stage: Stage, state: WorkflowState) -> Outcome | None:
        """An optional stage whose dependencies did not complete: its ``skipped`` outcome (a required
        one raises StageDependencyError); None when it can run."""
        if not stage.depends_on:
            return None
        done = {r.stage_id for r in state.stage_results if r.status == "completed"}
        missing = [d for d in stage.depends_on if d not in done]
        if not missing:
            return None
        if not stage.optional:
            raise StageDependencyError(f"required stage {stage.id!r} depends on {missing}, which did "
                                       "not complete")
        now = time.time_ns()
        return Outcome(StageResult(stage.id, "skipped", start_ns=now, end_ns=now, duration_ns=0), {})

    async def _join(self, group: str, state: WorkflowState, index: int,
                    outcome: Outcome) -> tuple[list[tuple[int, Outcome]], bool] | None:
        """The outcomes of every member of ``group`` once all are claimed, and whether this call won
        the join (decided once); None while a member is still running."""
        store = self.rt.store
        iid = state.instance_id
        outcomes: list[tuple[int, Outcome]] = []
        for member in self.wf.groups[group]:
            if member.index == index:
                outcomes.append((index, outcome))
                continue
            text = await store.stage_result(iid, stage_key(member.index))
            if text is None:
                return None
            outcomes.append((member.index, Outcome.from_json(text)))
        token = uuid.uuid4().hex
        won = await store.claim_stage(iid, join_key(group), token) == token
        return outcomes, won

    # ------------------------------------------------------------------ moving on
    def queue_names(self) -> list[str | None]:
        """The workflow's stage queues by index, and None after the last (a hop's next queue)."""
        queues = self._queues
        n = len(self.wf.stages)
        if len(queues) != n + 1:
            queues = self._queues = [*(self.rt.stage_queue(self.wf.id, i) for i in range(n)), None]
        return queues

    def step(self, state: WorkflowState, outcomes: list[tuple[int, Outcome]], payload: Any) -> Step:
        """Apply ``outcomes`` (stage index order) to ``state`` and build what follows (pure)."""
        wf = self.wf
        rt = self.rt
        n = len(wf.stages)
        step = Step(state)
        events = rt.events
        stage_events = STAGE_COMPLETED in events
        failed: tuple[int, StageResult] | None = None
        for idx, outcome in outcomes:
            result = outcome.result
            if result.status == "failed" and not wf.stages[idx].optional:
                if failed is None:
                    failed = (idx, result)
                continue
            state.stage_results.append(result)
            state.global_data.update(outcome.updates)
            state.version += 1
            state.last_modified_ns = time.time_ns()
            if stage_events and result.status == "completed":
                step.events.append(
                    _wire.stage_completed_event(state, result, stage_index=idx, total_stages=n))
        if failed is not None:
            idx, result = failed
            error = result.error or ""
            state.current_stage = wf.stages[idx].id
            _wire.mark_failed(state, error, end_ns=time.time_ns())
            step.failed = (idx, error)
            if WORKFLOW_FAILED in events:
                step.events.append(_wire.workflow_failed_event(
                    state, workflow_name=wf.name, failed_stage_id=wf.stages[idx].id,
                    failed_stage_index=idx, error=error, failure_ns=time.time_ns(), total_stages=n))
            completed = [r for r in state.stage_results if r.status == "completed"]
            if completed:
                last = completed[-1]
                step.hops.append((rt.compensation_queue(wf.id), _wire.compensation_message(
                    state, failed_stage_index=idx, total=len(completed), index=len(completed) - 1,
                    stage_to_compensate=last.stage_id, original=last, original_error=error,
                    failure_ns=time.time_ns(), results=[])))
            else:
                step.final = True
            return step
        state.current_stage = None
        nxt = wf.next_index(outcomes[-1][0])
        if nxt >= n:
            _wire.mark_completed(state, end_ns=time.time_ns())
            if WORKFLOW_COMPLETED in events:
                step.events.append(_wire.workflow_completed_event(state, workflow_name=wf.name,
                                                                  total_stages=n))
            step.final = True
            return step
        queues = self.queue_names()
        for j in wf.indexes_from(nxt):
            queue = queues[j]
            assert queue is not None
            step.hops.append((queue, _wire.flow_message(
                state, stage_index=j, stage_name=wf.stages[j].id, next_queue=queues[min(wf.next_index(j), n)],
                payload=payload, payload_type=_wire.PAYLOAD_TYPE_RAW)))
        return step

    async def execute(self, step: Step) -> None:
        """Publish the step's events and hops (confirmed) and save the new state; a final state is
        saved first, so whoever hears the final event finds it in the store (a crash in between
        loses the events, not the state: the store is the truth), and wakes the local waiters.
        The save after the hops is queued, not awaited (``Runtime.save(wait=False)``): it is the
        mark that the hops went out (a duplicate of this stage message that finds it does not send
        them again); a crash before it is committed is the crash between the send and the save that
        the duplicate check already allows for, and the next stage's save supersedes it."""
        rt = self.rt
        if step.final:
            await rt.save(step.state)
            rt.finished(step.state)
            await rt.send(step.hops, step.events)
            return
        await rt.send(step.hops, step.events)
        # the hops carry the new state already encoded: saved as it is, not encoded again
        await rt.save(step.state, step.hops[0][1].serialized_workflow_state if step.hops else None,
                      wait=False)


def _plain(stage: Stage) -> bool:
    """A plain sync stage function, one attempt, no StageInfo: run at once (``call_stage``'s path
    without its coroutine)."""
    return stage.retry is None and not (stage.is_async or stage.threaded or stage.wants_info)


def _completed(stage: Stage, data: dict[str, Any] | None, updates: Any, start: int, t0: int) -> Outcome:
    """The ``completed`` outcome of a stage that returned (``data``/``updates`` from the codec)."""
    duration = time.perf_counter_ns() - t0
    return Outcome(StageResult(stage.id, "completed", data=data, start_ns=start, end_ns=start + duration,
                               duration_ns=duration), updates)


def _failed(stage: Stage, state: WorkflowState, exc: Exception, start: int, t0: int) -> Outcome:
    """The ``failed`` outcome of a stage that raised ``exc`` (logged)."""
    duration = time.perf_counter_ns() - t0
    text = error_text(exc)
    log.warning("stage %r of %s failed (%s): %s", stage.id, state.instance_id,
                "optional" if stage.optional else "required", text)
    return Outcome(StageResult(stage.id, "failed", error=text, start_ns=start, end_ns=start + duration,
                               duration_ns=duration), {})


__all__ = ["StageHandler", "Step", "read_state"]
