"""What the stage and compensation handlers share with their engine: the client to publish with, the
state store, which lifecycle events are published, the queue prefix, and the waiters to wake.

Every StageFlow publish goes to the default exchange (routing key = queue) persistent, as Go sends
it; events go to ``mmate.events`` / ``evt.{instanceId}.{Type}``. Several publishes of one step are
sent together, in order, and awaited together (their broker confirms included): the stage message is
acked only after everything it caused is confirmed.
"""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Collection, Sequence
from types import MethodType as _MethodType
from typing import Any

from mmate_fast.contracts import MessageKind
from mmate_fast.stageflow import _queues
from mmate_fast.stageflow._wire import WorkflowState, encode_state
from mmate_fast.stageflow.store import FlowRecord, FlowStore


class Runtime:
    """The engine's side of the handlers (one per FlowEngine)."""

    __slots__ = ("_claim_and_save", "_later", "_later_of", "_now", "_now_of", "_save_nowait", "client",
                 "events", "finished", "prefix", "store", "worker")

    def __init__(self, client: Any, store: FlowStore, *, events: Collection[str], prefix: str, worker: str,
                 finished: Callable[[WorkflowState], None]) -> None:
        self.client = client
        self.store = store
        #: the lifecycle event type names published (``_lifecycle.event_types``); the handlers do not
        #: build an event that is not in it
        self.events = events
        self.prefix = prefix
        self.worker = worker
        #: called with the final state when a flow ends here (wakes local waiters)
        self.finished = finished
        #: the store's optional ``save_nowait(record)`` (queue a save nobody waits for), or None
        self._save_nowait: Callable[[FlowRecord], None] | None = getattr(store, "save_nowait", None)
        #: the store's optional ``claim_stage_and_save(instance, key, result, record)``, or None
        self._claim_and_save: Callable[[str, str, str, FlowRecord], Awaitable[str]] | None = getattr(
            store, "claim_stage_and_save", None)
        self._now: Any = None
        self._now_of: Any = None
        self._later: Any = None
        self._later_of: Any = None

    @property
    def now(self) -> Any:
        """The store when it answers at once (``stage_result_now``, ``claim_stage_now``,
        ``claim_stage_and_save_now``, ``save_now``: memory://), else None: a stage hop then needs no
        coroutine for the store. Follows ``store`` when it is replaced."""
        store = self.store
        if store is not self._now_of:
            self._now_of = store
            self._now = store if all(callable(getattr(store, name, None)) for name in _NOW_CALLS) else None
        return self._now

    @property
    def later(self) -> Any:
        """The store when it hands its calls back as futures (``stage_result_later``,
        ``claim_stage_later``, ``claim_stage_and_save_later``, ``save_later``, and ``save_nowait``:
        SQLite), else None: a stage hop then chains its steps on those futures (done-callbacks, no
        coroutine) and a save awaits the batch's future. Follows ``store`` when it is replaced."""
        store = self.store
        if store is not self._later_of:
            self._later_of = store
            found = all(callable(getattr(store, name, None)) for name in _LATER_CALLS)
            self._later = store if found else None
        return self._later

    def stage_queue(self, workflow_id: str, index: int) -> str:
        return _queues.stage_queue(self.prefix, workflow_id, index)

    def compensation_queue(self, workflow_id: str) -> str:
        return _queues.compensation_queue(self.prefix, workflow_id)

    async def send(self, hops: Sequence[tuple[str, Any]], events: Sequence[Any] = ()) -> None:
        """Publish ``events`` (those of the selected types) then each ``(queue, envelope)`` of ``hops``,
        in that order (Go's), and wait for all of them (confirms included)."""
        sent = self.send_now(hops, events)
        if sent is not None:
            await sent

    def send_now(self, hops: Sequence[tuple[str, Any]], events: Sequence[Any] = ()) -> Awaitable[Any] | None:
        """``send`` without waiting: every publish is made now, in order; returns what completes when
        all are confirmed (the one publish's own awaitable, or a gather that fails with the first
        error once all are done), None when nothing was published."""
        client = self.client
        publish = client.publish
        if publish.__class__ is _MethodType and publish.__func__ is (
                _CLIENT_PUBLISH if _CLIENT_PUBLISH is not None else _client_publish()):
            # Client.publish itself (not a wrapper set on the instance or a subclass's): its live
            # publisher's publish called directly (one keyword-packing layer and frame fewer a publish)
            publisher = client._live_publisher
            if publisher is not None:
                publish = publisher.publish
        if not events and len(hops) == 1:  # a plain hop (most of them): one publish, its confirm
            queue, envelope = hops[0]
            return publish(envelope, exchange="", routing_key=queue, persistent=True)
        calls = []
        selected = self.events
        for event in events:
            if type(event).__name__ in selected:
                calls.append(publish(event, kind=MessageKind.EVENT, persistent=True))
        for queue, envelope in hops:
            calls.append(publish(envelope, exchange="", routing_key=queue, persistent=True))
        if len(calls) == 1:
            return calls[0]
        return _all_of(calls) if calls else None

    def record(self, state: WorkflowState, state_json: str | None = None) -> FlowRecord:
        """The store record of ``state`` (``state_json``: its encoding when the caller has it)."""
        return FlowRecord(
            instance_id=state.instance_id, workflow_id=state.workflow_id, status=state.status,
            version=state.version, current_stage=state.current_stage, error=state.error_message,
            started_ns=state.start_ns, updated_ns=state.last_modified_ns,
            state_json=state_json if state_json is not None else encode_state(state), worker=self.worker)

    async def claim_and_save(self, instance_id: str, stage_key: str, result_json: str,
                             state: WorkflowState) -> str:
        """Claim ``result_json`` under (instance, stage key) and, when this call wins, save ``state``:
        in one transaction when the store can (``claim_stage_and_save``), else one after the other.
        Returns the claimed result (ours when we won)."""
        record = self.record(state)
        if self._claim_and_save is not None:
            return await self._claim_and_save(instance_id, stage_key, result_json, record)
        stored = await self.store.claim_stage(instance_id, stage_key, result_json)
        if stored == result_json:
            await self.store.save(record)
        return stored

    def save_now(self, state: WorkflowState, state_json: str | None = None) -> None:
        """``save`` through the store's ``save_now`` (only with ``now``: a store that answers at once)."""
        self.now.save_now(self.record(state, state_json))

    async def save(self, state: WorkflowState, state_json: str | None = None, *, wait: bool = True) -> None:
        """Save ``state`` as the instance's record (the store ignores an older version). With
        ``wait=False`` and a store that has ``save_nowait``, the save is only queued (committed with
        the store's next batch; a failure is logged): for the saves after a hop, which nothing that
        follows in this process needs committed."""
        record = self.record(state, state_json)
        if not wait and self._save_nowait is not None:
            self._save_nowait(record)
        elif (later := self.later) is not None:  # the batch's future itself (no store coroutine)
            await later.save_later(record)
        else:
            await self.store.save(record)


def _all_of(calls: list[Awaitable[Any]]) -> asyncio.Future[None]:
    """A future done when every call is, failing then with the first one's error (in call order;
    cancelled if that one was cancelled): futures are joined by done-callbacks, no Task (a
    coroutine gets one)."""
    futures = [c if isinstance(c, asyncio.Future) else asyncio.ensure_future(c) for c in calls]
    out: asyncio.Future[None] = futures[0].get_loop().create_future()
    left = [len(futures)]

    def one_done(_: asyncio.Future[Any]) -> None:
        left[0] -= 1
        if left[0] or out.done():
            return
        first: BaseException | None = None
        for fut in futures:  # every error is retrieved (as gather(return_exceptions=True) does)
            exc = asyncio.CancelledError() if fut.cancelled() else fut.exception()
            if first is None:
                first = exc
        if isinstance(first, asyncio.CancelledError):
            out.cancel()
        elif first is not None:
            out.set_exception(first)
        else:
            out.set_result(None)

    for fut in futures:
        fut.add_done_callback(one_done)
    return out


def _client_publish() -> Any:
    """``Client.publish``: ``send_now`` calls the client's live publisher directly when the client's
    publish is this one. Found in ``sys.modules`` (stageflow sits below the front door and does not
    import it); None while ``mmate_fast.client`` is not imported (no Client, nothing to skip)."""
    global _CLIENT_PUBLISH
    if _CLIENT_PUBLISH is None:
        front = sys.modules.get("mmate_fast.client")
        if front is None:
            return None
        _CLIENT_PUBLISH = front.Client.publish
    return _CLIENT_PUBLISH


_CLIENT_PUBLISH: Any = None

#: the calls of a store that answers at once (see ``Runtime.now``)
_NOW_CALLS = ("stage_result_now", "claim_stage_now", "claim_stage_and_save_now", "save_now")

#: the calls of a store that hands its calls back as futures (see ``Runtime.later``)
_LATER_CALLS = ("stage_result_later", "claim_stage_later", "claim_stage_and_save_later", "save_later",
                "save_nowait")

__all__ = ["Runtime"]
