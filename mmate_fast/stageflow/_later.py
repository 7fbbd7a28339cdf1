"""A stage hop on a store that answers with futures (``Runtime.later``: SQLite), with no coroutine and no
Task: the hop's steps are done-callbacks chained on the store's futures and the publish confirm.

It does what ``StageHandler._guarded`` -> ``_handle`` -> ``_go_on`` / ``_finish`` -> ``execute`` do for an
idempotent plain stage (not in a parallel group) that runs for the first time here, in the same order
and with the same durability: the claimed outcome is read (``stage_result``); the stage runs; its
outcome is claimed and **committed** before anything is published (the last stage: claimed and the
final state saved in one transaction, then the local waiters woken and the final events published);
the next hop is published and, once confirmed, the new state is queued as saved (``save_nowait``:
the mark that the hop went out). Every other turn (a claimed outcome found, a lost claim, a required
stage that failed, a step that ends the flow with a failure) goes on in ``_go_on``'s coroutine, as the
general path does from there. The instance's stage is in flight here (``StageHandler._inflight``)
until the hop is done, so a concurrent duplicate waits for it as it waits for the general path.

On a store with ``claim_computed_later`` (SQLite) the read, the stage and the claim (for the last stage
also the final save) share one transaction: the store calls ``_compute`` inside it when it finds no
claim. A stage too slow to hold the write lock that long (``SLOW_RUNS`` runs in a row over
``INLINE_STAGE_NS``), or a batch run off the loop's thread, takes the split path: read, run, claim.

What the subscriber gets is ``out``: a future done (or failed, or cancelled) when the hop is.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from mmate_fast.stageflow import _wire
from mmate_fast.stageflow._lifecycle import STAGE_COMPLETED, WORKFLOW_COMPLETED
from mmate_fast.stageflow._outcome import Outcome, advance, stage_key

if TYPE_CHECKING:
    from mmate_fast.stageflow._hops import StageHandler, Step
    from mmate_fast.stageflow._wire import WorkflowState
    from mmate_fast.stageflow.store import FlowRecord
    from mmate_fast.stageflow.workflow import Stage


#: a plain stage whose last ``SLOW_RUNS`` runs in a row each took longer than ``INLINE_STAGE_NS`` no
#: longer runs inside its claim's transaction on this engine (it would hold the file's write lock, which
#: the other processes wait for, as long); one slow run is not enough: a busy machine preempts a
#: quick stage now and then
INLINE_STAGE_NS = 500_000
SLOW_RUNS = 8


class LaterHop:
    """One stage message's hop through a futures store (see the module docstring); made by
    ``StageHandler`` with the instance's stage already marked in flight."""

    __slots__ = ("error", "final", "handler", "index", "json", "key", "later", "msg", "nxt", "out", "outcome",
                 "record", "state", "step", "text", "thread")

    def __init__(self, handler: StageHandler, index: int, msg: Any, state: WorkflowState, later: Any) -> None:
        self.handler = handler
        self.index = index
        self.msg = msg
        self.state = state
        self.later = later
        self.key = (state.instance_id, index)
        self.outcome: Outcome | None = None
        self.text = ""
        self.step: Step | None = None
        self.record: FlowRecord | None = None
        #: the advanced state's string (``_outcome.advance``: the hop's or the final state), when the
        #: stage's outcome was applied in one call; None: the general ``step`` applies it
        self.json: str | None = None
        #: the next stage of a one-call hop
        self.nxt = 0
        #: the outcome completes the flow (claimed with the final record)
        self.final = False
        self.error: Exception | None = None
        self.thread = threading.get_ident()
        claim_computed = getattr(later, "claim_computed_later", None)
        if claim_computed is not None and handler._slow.get(index, 0) < SLOW_RUNS:
            first: asyncio.Future[Any] = claim_computed(state.instance_id, stage_key(index), self._compute)
            first.add_done_callback(self._computed)
        else:
            first = later.stage_result_later(state.instance_id, stage_key(index))
            first.add_done_callback(self._read)
        self.out: asyncio.Future[None] = first.get_loop().create_future()

    # ------------------------------------------------------------------ the stage in the claim's transaction
    def _compute(self) -> tuple[str, FlowRecord | None] | None:
        """Called by the store inside the transaction that found no claim: run the stage (and, when it
        completes the flow, build the final record) and hand back what to claim. The same result when
        called again (a retried batch); None (claim nothing) off the loop's thread before it ran, or
        when it raised (kept in ``error``)."""
        if self.text:
            return self.text, self.record
        if self.error is not None or threading.get_ident() != self.thread:
            return None
        try:
            self._run()
            slow = self.handler._slow
            outcome = self.outcome
            assert outcome is not None
            if (outcome.result.duration_ns or 0) > INLINE_STAGE_NS:  # slow under the write lock
                slow[self.index] = slow.get(self.index, 0) + 1
            elif slow:
                slow.pop(self.index, None)
        except Exception as exc:
            self.error = exc
            self.text = ""
            return None
        return self.text, self.record

    def _run(self) -> None:
        """Run the stage and make what is claimed: ``text`` (the claim), and for the outcome that
        completes the flow ``final`` and the final ``record``. A fresh outcome that lets the flow go on
        (to one next stage, or to its end when no StageCompletedEvent is selected) is applied to
        ``state`` at once, with the next state string and the claim text made in one call
        (``_outcome.advance``, as the memory store's hop does; ``json``); anything else (a required
        stage that failed, a parallel group next, the last stage's StageCompletedEvent) is left to
        ``step``."""
        handler = self.handler
        wf = handler.wf
        index = self.index
        state = self.state
        stage: Stage = wf.stages[index]
        outcome = self.outcome = handler._run_now(stage, state)
        stages = wf.stages
        if outcome.result.status == "failed" and not stage.optional:  # the failure path: step
            self.text = outcome.to_json()
            return
        nxt = wf.next_index(index)
        if nxt < len(stages):
            if stages[nxt].group is None:  # one hop
                self.json, self.text = advance(state, outcome, time.time_ns())
                self.nxt = nxt
            else:
                self.text = outcome.to_json()
            return
        self.final = True
        rt = handler.rt
        if STAGE_COMPLETED not in rt.events:  # (its ``sequence`` is the version between add and complete)
            t = time.time_ns()
            json, self.text = advance(state, outcome, t, t)
            self.json = json
            self.record = rt.record(state, json)
            return
        self.text = outcome.to_json()
        step = self.step = handler.step(state, [(index, outcome)], None)
        self.record = rt.record(step.state)

    def _computed(self, fut: asyncio.Future[tuple[str | None, bool]]) -> None:
        """``claim_computed_later`` is committed: a claim found (a duplicate), the stage's outcome
        claimed (or lost to another), or the stage not run (``_compute`` declined): on as the split
        path goes."""
        try:
            stored, _ = fut.result()
            if self.error is not None:
                raise self.error
            if not self.text:  # the stage did not run in it
                self._read_result(stored)
            elif self.final:
                self._after_finish(stored)
            else:
                self._after_claim(stored)
        except BaseException as exc:  # handed to the subscriber in ``out``
            self._fail(exc)

    # ------------------------------------------------------------------ the split path (done-callbacks)
    def _read(self, fut: asyncio.Future[str | None]) -> None:
        try:
            self._read_result(fut.result())
        except BaseException as exc:  # handed to the subscriber in ``out``
            self._fail(exc)

    def _read_result(self, stored: str | None) -> None:
        """The claimed outcome is read: none, so the stage runs and its outcome is claimed (with the
        final state when it completes the flow); one, so the general path goes on with it."""
        handler = self.handler
        state = self.state
        index = self.index
        if stored is not None:  # a duplicate of a stage that ran: the general path decides
            self._resume(handler._go_on(index, self.msg, state, Outcome.from_json(stored), False))
            return
        self._run()
        text = self.text
        iid = state.instance_id
        if not self.final:
            claim = self.later.claim_stage_later(iid, stage_key(index), text)
            claim.add_done_callback(self._claimed)
            return
        claim = self.later.claim_stage_and_save_later(iid, stage_key(index), text, self.record)
        claim.add_done_callback(self._finished)

    def _claimed(self, fut: asyncio.Future[str]) -> None:
        try:
            self._after_claim(fut.result())
        except BaseException as exc:
            self._fail(exc)

    def _after_claim(self, stored: str | None) -> None:
        """The outcome is claimed (committed): publish the step, or let the general path go on (a lost
        claim, a required stage that failed, a flow that ends with this failure)."""
        handler = self.handler
        outcome = self.outcome
        assert outcome is not None
        if stored != self.text:  # another delivery claimed first
            assert stored is not None
            theirs = Outcome.from_json(stored)
            # ``state`` was advanced when ``json`` was made: the general path starts from the message's
            state = self.state
            if self.json is not None:
                state = _wire.decode_state(self.msg.serialized_workflow_state)
            self._resume(handler._go_on(self.index, self.msg, state, theirs, False))
            return
        rt = handler.rt
        if self.json is not None:  # the state advanced in one call: the hop to stage ``nxt``
            sent = rt.send_now(*self._hop())
        else:
            step = self.step = handler.step(self.state, [(self.index, outcome)], self.msg.payload)
            if step.final or (outcome.result.status == "failed"
                              and not handler.wf.stages[self.index].optional):
                self._resume(handler._go_on(self.index, self.msg, self.state, outcome, True, step))
                return
            sent = rt.send_now(step.hops, step.events)
        if sent is None:  # nothing published: saved as sent now
            self._save_sent()
            self._done(None)
            return
        _future(sent).add_done_callback(self._sent)

    def _hop(self) -> tuple[tuple[tuple[str, Any]], list[Any]]:
        """The one-call hop's publishes (``StageHandler.one_hop``) to ``nxt``."""
        outcome = self.outcome
        assert outcome is not None
        return self.handler.one_hop(self.index, self.nxt, self.state, self.msg.payload, self.json,
                                    outcome.result)

    def _sent(self, fut: asyncio.Future[Any]) -> None:
        """The hop is confirmed: the new state is queued as saved (the mark that it went out); a failed
        publish fails the hop (nothing saved), as ``execute`` does."""
        try:
            fut.result()
            self._save_sent()
        except BaseException as exc:
            self._fail(exc)
            return
        self._done(None)

    def _finished(self, fut: asyncio.Future[str]) -> None:
        try:
            self._after_finish(fut.result())
        except BaseException as exc:
            self._fail(exc)

    def _after_finish(self, stored: str | None) -> None:
        """The last stage's outcome is claimed and the final state saved in one transaction: wake the
        local waiters and publish the final events; lost: the general path goes on from the message."""
        handler = self.handler
        if stored != self.text:  # nothing of ours was saved; our step changed ``state``: from the message
            assert stored is not None
            state = _wire.decode_state(self.msg.serialized_workflow_state)
            self._resume(handler._go_on(self.index, self.msg, state, Outcome.from_json(stored), False))
            return
        rt = handler.rt
        step = self.step
        if step is None:  # the final state advanced in one call (``_last_now``'s ending)
            state = self.state
            rt.finished(state)
            sent = None
            if WORKFLOW_COMPLETED in rt.events:
                wf = handler.wf
                sent = rt.send_now((), (_wire.workflow_completed_event(state, workflow_name=wf.name,
                                                                       total_stages=len(wf.stages)),))
        else:
            rt.finished(step.state)
            sent = rt.send_now(step.hops, step.events)
        if sent is None:
            self._done(None)
            return
        _future(sent).add_done_callback(self._events_sent)

    def _events_sent(self, fut: asyncio.Future[Any]) -> None:
        try:
            fut.result()
        except BaseException as exc:
            self._fail(exc)
            return
        self._done(None)

    # ------------------------------------------------------------------ endings
    def _save_sent(self) -> None:
        """Queue the new state as saved (the hop's state string, not encoded again)."""
        rt = self.handler.rt
        if self.json is not None:
            record = rt.record(self.state, self.json)
        else:
            step = self.step
            assert step is not None
            record = rt.record(step.state, step.hops[0][1].serialized_workflow_state if step.hops else None)
        self.later.save_nowait(record)

    def _resume(self, coro: Awaitable[None]) -> None:
        """Go on in a coroutine (a Task) with the stage still in flight here; ``out`` follows it."""
        task = asyncio.ensure_future(self._then(coro))
        _RESUMED.add(task)  # a strong reference until it is done (the loop keeps only a weak one)
        task.add_done_callback(_RESUMED.discard)

    async def _then(self, coro: Awaitable[None]) -> None:
        try:
            await coro
        except BaseException as exc:
            self._fail(exc)
            return
        self._done(None)

    def _done(self, result: None) -> None:
        self.handler._release(self.key)
        if not self.out.done():
            self.out.set_result(result)

    def _fail(self, exc: BaseException) -> None:
        self.handler._release(self.key)
        out = self.out
        if out.done():
            return
        if isinstance(exc, asyncio.CancelledError):
            out.cancel()
        elif isinstance(exc, Exception):
            out.set_exception(exc)
        else:  # KeyboardInterrupt, SystemExit: not a hop's outcome
            out.cancel()
            raise exc


#: the Tasks of hops that went on in the general path, until they are done
_RESUMED: set[asyncio.Future[None]] = set()


def _future(sent: Awaitable[Any]) -> asyncio.Future[Any]:
    return sent if isinstance(sent, asyncio.Future) else asyncio.ensure_future(sent)


__all__ = ["LaterHop"]
