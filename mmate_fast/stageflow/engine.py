"""``FlowEngine``: runs StageFlow workflows over a Client, on Go's wire (spec §8).

::

    flows = FlowEngine(client, store="sqlite:///flows.db")
    await flows.register(wf)                 # declare the queues, serve the stages here
    iid = await flows.start(wf, {"orderId": "o-1"})
    state = await flows.wait(iid, timeout=60)

``register`` declares ``{prefix}{workflowId}.stage{N}`` and ``{prefix}compensation.{workflowId}`` with
Go's arguments and (``serve=True``) consumes them with the client, ``concurrency`` messages at a time
per queue; any number of processes may serve the same workflow (competing consumers) and a process
may only start flows (``serve=False``). Every state change is saved in the store (``status``/``list``
read it); a stage message is acked only once the hop it caused is confirmed by the broker.
"""
from __future__ import annotations

import asyncio
import enum
import functools
import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any

from mmate_fast.errors import InvalidArgumentError, MmateError, UnknownWorkflowError, WorkflowDefinitionError
from mmate_fast.stageflow import _ids, _queues, _wire
from mmate_fast.stageflow._compensation import CompensationHandler
from mmate_fast.stageflow._context import ContextCodec
from mmate_fast.stageflow._hops import StageHandler
from mmate_fast.stageflow._lifecycle import TERMINAL_EVENTS, EventsOption, event_types
from mmate_fast.stageflow._router import OWN_TYPES, router_for
from mmate_fast.stageflow._runtime import Runtime
from mmate_fast.stageflow._waiting import Waiters
from mmate_fast.stageflow._wire import WorkflowState
from mmate_fast.stageflow.store import FlowRecord, FlowStore, open_store
from mmate_fast.stageflow.workflow import Workflow

log = logging.getLogger("mmate_fast.stageflow")
#: a time-ordered (UUIDv7-style) instance id: it appends to the store's indexes instead of a random leaf
_new_id = _ids.new_id
_time_ns = time.time_ns
_flow_message = _wire.flow_message
_INITIAL = _wire.PAYLOAD_TYPE_INITIAL


class FlowStatus(enum.StrEnum):
    """The statuses of a workflow instance (``WorkflowState.status``, ``FlowRecord.status``)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    COMPENSATED = "compensated"
    CANCELLED = "cancelled"


class _Registration:
    __slots__ = ("_first", "codec", "compensation", "queues", "serving", "stages", "wf")

    def __init__(self, wf: Workflow, stages: StageHandler, compensation: CompensationHandler,
                 queues: list[str]) -> None:
        self.wf = wf
        self.codec = ContextCodec(wf.context)
        self.stages = stages
        self.compensation = compensation
        self.queues = queues
        self.serving = False
        self._first: tuple[int, list[tuple[str, int, str, str | None]]] = (-1, [])

    def first_hops(self) -> list[tuple[str, int, str, str | None]]:
        """(queue, stage index, stage id, next queue) of each stage a new flow starts with, kept
        until the workflow's stage count changes (``StageHandler.queue_names`` does the same)."""
        wf = self.wf
        n = len(wf.stages)
        if self._first[0] != n:
            queues = self.stages.queue_names()
            hops = []
            for j in wf.first_indexes():
                queue = queues[j]
                assert queue is not None
                hops.append((queue, j, wf.stages[j].id, queues[min(wf.next_index(j), n)]))
            self._first = (n, hops)
        return self._first[1]


class FlowEngine:
    """Runs workflows over ``client`` (see the module docstring).

    ``store``: a FlowStore or its URL (``memory://`` default: this process only; ``sqlite:///...`` or
    ``postgresql://...`` for several processes); ``events``: which of Go's lifecycle events to publish
    on ``mmate.events``: ``"terminal"`` (default) only WorkflowCompleted/Failed/Compensated (what
    ``wait()`` in another process needs; Go publishes none unless asked), ``True`` all four (Go's
    ``WithCompletionEvents(true)``: set it where consumers expect StageCompletedEvent), ``False`` none
    (``wait()`` then polls the store, which must be shared across processes), or a set of type names;
    ``prefix``: the stage queue prefix (Go's default ``stageflow.``);
    ``concurrency``: stage messages handled at once per queue (Go's ``MaxStageConcurrency``);
    ``idempotent``: claim each stage's outcome in the store so a redelivered or duplicated stage
    message never runs a stage twice (needed by parallel groups); ``worker``: the name saved with
    each record (default ``{service}@{host}:{pid}``).
    """

    def __init__(self, client: Any, *, store: str | FlowStore = "memory://",
                 events: EventsOption = "terminal", prefix: str = _queues.DEFAULT_PREFIX,
                 concurrency: int = 10, idempotent: bool = True, worker: str | None = None) -> None:
        if type(concurrency) is not int or not 1 <= concurrency <= 65535:
            raise InvalidArgumentError(
                f"concurrency must be a whole number from 1 to 65535, got {concurrency!r}",
                "concurrency")
        if not isinstance(prefix, str):
            raise InvalidArgumentError(f"prefix must be a str, got {prefix!r}", "prefix")
        self.client = client
        self._owns_store = isinstance(store, str)
        self.store: FlowStore = open_store(store) if isinstance(store, str) else store
        self.events = events
        #: the lifecycle event type names this engine publishes
        self.event_types = event_types(events)
        self.prefix = prefix
        self.concurrency = concurrency
        self.idempotent = idempotent
        self.worker = worker or (f"{getattr(client, 'service_name', 'service')}@{socket.gethostname()}:"
                                 f"{os.getpid()}")
        # wait() listens for the terminal events when this engine publishes any: an engine that
        # publishes none is assumed to run with peers that publish none either (the store answers)
        self._waiters = Waiters(client, self.store, listen=bool(self.event_types & set(TERMINAL_EVENTS)))
        self._rt = Runtime(client, self.store, events=self.event_types, prefix=prefix, worker=self.worker,
                           finished=self._waiters.resolve)
        self._registered: dict[str, _Registration] = {}
        self._subscriptions: list[Any] = []
        self._lock = asyncio.Lock()
        self._warned_local = False

    def __repr__(self) -> str:
        return f"<FlowEngine prefix={self.prefix!r} workflows={sorted(self._registered)}>"

    @property
    def workflows(self) -> dict[str, Workflow]:
        """The registered workflows by id."""
        return {wid: reg.wf for wid, reg in self._registered.items()}

    def stage_queue(self, workflow: Workflow | str, index: int) -> str:
        """``{prefix}{workflowId}.stage{index}``."""
        return self._rt.stage_queue(_workflow_id(workflow), index)

    def compensation_queue(self, workflow: Workflow | str) -> str:
        """``{prefix}compensation.{workflowId}``."""
        return self._rt.compensation_queue(_workflow_id(workflow))

    # ------------------------------------------------------------------ registration
    async def register(self, wf: Workflow, *, serve: bool = True,
                       stages: Iterable[int | str] | None = None, compensation: bool | None = None) -> None:
        """Declare the workflow's queues (Go's arguments) and, with ``serve``, consume them here.
        ``stages`` (indexes or stage ids; default all) limits the stage queues served here, so that
        stages of one workflow can be served by different services; ``compensation``: serve the
        compensation queue too (default: when serving every stage; the compensation handlers of
        the stages to undo must be defined in the process that serves it).
        Registering again is harmless (``serve=True`` later starts serving); another workflow object
        with the same id raises WorkflowDefinitionError."""
        if not isinstance(wf, Workflow):
            raise InvalidArgumentError(f"register() needs a Workflow, got {type(wf).__qualname__}", "wf")
        wf.validate()
        served = _served_stages(wf, stages)
        if wf.groups and not self.idempotent:
            raise WorkflowDefinitionError(f"workflow {wf.id!r} has parallel stages: their join needs "
                                          "FlowEngine(idempotent=True)")
        async with self._lock:
            reg = self._registered.get(wf.id)
            if reg is not None and reg.wf is not wf:
                raise WorkflowDefinitionError(
                    f"another workflow with id {wf.id!r} is registered on this engine")
            if reg is None:
                reg = await self._declare(wf)
                self._registered[wf.id] = reg
            if serve and not reg.serving:
                await self._serve(reg, served, stages is None if compensation is None else compensation)
                if wf.groups:
                    self._warn_if_local(wf)

    def _warn_if_local(self, wf: Workflow) -> None:
        """Once per engine: a parallel join (and duplicate detection) needs every serving process to
        share the store; a process-local one silently stalls joins whose members ran elsewhere."""
        url = process_local_url(self.store)
        if url is None or self._warned_local:
            return
        self._warned_local = True
        log.warning(
            "workflow %r has parallel stages and this engine's flow store %s is private to this process: "
            "if more than one process serves the workflow, a join whose members ran in different "
            "processes never fires (and duplicates are not recognised across processes); use a shared "
            "store (sqlite:///path.db for processes on one machine, postgresql://... for several)",
            wf.id, url)

    async def _declare(self, wf: Workflow) -> _Registration:
        client = self.client
        fifo = bool(getattr(client, "fifo", False))
        queues = []
        for i in range(len(wf.stages)):
            queues.append(await _queues.declare_flow_queue(client, self._rt.stage_queue(wf.id, i),
                                                           _queues.STAGE_TTL_MS, fifo=fifo))
        queues.append(await _queues.declare_flow_queue(client, self._rt.compensation_queue(wf.id),
                                                       _queues.COMPENSATION_TTL_MS, fifo=fifo))
        return _Registration(wf, StageHandler(self._rt, wf, idempotent=self.idempotent),
                             CompensationHandler(self._rt, wf, idempotent=self.idempotent), queues)

    async def _serve(self, reg: _Registration, served: list[int], compensation: bool) -> None:
        router = router_for(self.client)
        queues = []
        for i in served:
            queues.append(reg.queues[i])
            router.routes[reg.queues[i]] = _stage_route(reg.stages, i)
        if compensation:
            queues.append(reg.queues[-1])
            router.routes[reg.queues[-1]] = reg.compensation.handle
        for queue in queues:
            self._subscriptions.append(await self.client.subscribe(
                queue, prefetch=self.concurrency, concurrency=self.concurrency, declare=False,
                registry=OWN_TYPES))
        reg.serving = True

    def _registration(self, workflow: Workflow | str) -> _Registration:
        reg = self._registered.get(_workflow_id(workflow))
        if reg is None:
            raise UnknownWorkflowError(
                f"workflow {_workflow_id(workflow)!r} is not registered on this engine: "
                "await engine.register(workflow) first")
        return reg

    # ------------------------------------------------------------------ running
    async def start(self, workflow: Workflow | str, data: Any = None, *,
                    instance_id: str | None = None) -> str:
        """Start an instance with ``data`` (a dict, or the workflow's context object) as its
        ``globalData`` and stage-0 payload; returns the instance id. A Workflow not registered yet is
        registered without serving (its queues declared). The instance is saved (``running``)
        before its first hop is published."""
        if isinstance(workflow, Workflow) and workflow.id not in self._registered:
            await self.register(workflow, serve=False)
        reg = self._registration(workflow)
        wf = reg.wf
        payload: Any
        if data.__class__ is dict:  # the common case, without the ABC checks
            global_data = dict(data)
            payload = data
        else:
            global_data = reg.codec.to_data(data)
            payload = data if data is None or isinstance(data, Mapping) else dict(global_data)
        iid = instance_id or _new_id()
        # (positional: workflow_id, instance_id, status, current_stage, stage_results, global_data,
        # start_ns, end_ns, last_modified_ns, error_message, version; Go reads the clock twice)
        state = WorkflowState(wf.id, iid, "running", None, [], global_data, _time_ns(), None, _time_ns(),
                              None, 1)
        hops = [(queue, _flow_message(state, stage_index=j, stage_name=name, next_queue=nxt, payload=payload,
                                      payload_type=_INITIAL))
                for queue, j, name, nxt in reg.first_hops()]
        if self._waiters.listener_missing:
            await self._waiters.ensure_listener()
        # the first hop carries the state encoded: saved as it is, not encoded again
        rt = self._rt
        if rt.now is not None:  # a store that answers at once: no coroutine for the save
            rt.save_now(state, hops[0][1].serialized_workflow_state)
        elif rt.later is not None:  # a store that answers with futures (SQLite): its batch's, awaited
            await rt.later.save_later(rt.record(state, hops[0][1].serialized_workflow_state))
        else:
            await rt.save(state, hops[0][1].serialized_workflow_state)
        sent = rt.send_now(hops)
        if sent is not None:
            await sent
        self._waiters.started(iid)
        return iid

    async def wait(self, instance_id: str, timeout: float = 60.0) -> WorkflowState:
        """The final state of ``instance_id`` (completed, compensated, or failed with nothing to
        compensate), wherever it ran; FlowTimeoutError after ``timeout`` seconds. An instance nobody
        knows is waited for like any other (it may not have started yet, or run on engines with another
        store) and ends in FlowTimeoutError: ``status`` tells at once whether the store knows it."""
        return await self._waiters.wait(instance_id, timeout)

    async def status(self, instance_id: str) -> FlowRecord | None:
        """The stored record of ``instance_id`` (None if the store does not know it)."""
        return await self.store.get(instance_id)

    async def state(self, instance_id: str) -> WorkflowState | None:
        """The stored WorkflowState of ``instance_id`` (None if the store does not know it)."""
        record = await self.store.get(instance_id)
        return None if record is None else _wire.decode_state(record.state_json)

    async def list(self, *, status: str | None = None, workflow: Workflow | str | None = None,
                   limit: int = 100, offset: int = 0) -> list[FlowRecord]:
        """Stored records, newest first, filtered by status and/or workflow."""
        return await self.store.list(status=None if status is None else str(status),
                                     workflow=None if workflow is None else _workflow_id(workflow),
                                     limit=limit, offset=offset)

    async def close(self) -> None:
        """Stop serving (in-flight stages finish within the client's close), stop the wait listener,
        close the store if the engine opened it."""
        subscriber = getattr(self.client, "subscriber", None)
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            if subscriber is None:
                break
            try:
                await subscriber.unsubscribe(sub)
            except MmateError as exc:  # the client or its connection is closed already
                log.debug("stopping the consumer of %s failed: %s", sub.queue, exc)
        router = router_for(self.client)
        for reg in self._registered.values():
            for queue in reg.queues:
                router.routes.pop(queue, None)
            reg.serving = False
        await self._waiters.close()
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> FlowEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _served_stages(wf: Workflow, stages: Iterable[int | str] | None) -> list[int]:
    """The stage indexes named by ``stages`` (indexes or ids; None: all); InvalidArgumentError for
    one the workflow does not have."""
    n = len(wf.stages)
    if stages is None:
        return list(range(n))
    if isinstance(stages, str | int):
        stages = [stages]
    out: list[int] = []
    for s in stages:
        if isinstance(s, str):
            st = wf.stage_by_id(s)
            if st is None:
                raise InvalidArgumentError(f"workflow {wf.id!r} has no stage {s!r} to serve", "stages")
            i = wf.stages.index(st)
        elif type(s) is int and 0 <= s < n:
            i = s
        else:
            raise InvalidArgumentError(
                f"stages takes stage ids or indexes 0..{n - 1} of workflow {wf.id!r}, got {s!r}", "stages")
        if i not in out:
            out.append(i)
    return sorted(out)


def process_local_url(store: Any) -> str | None:
    """The URL of ``store`` when it lives in this process only (``memory://...``,
    ``sqlite:///:memory:``), else None (a file, a server, or a store that does not say)."""
    url = getattr(store, "url", None)
    if not isinstance(url, str):
        return None
    base = url.split("?", 1)[0].lower()
    return url if base.startswith("memory://") or base == "sqlite:///:memory:" else None


def _workflow_id(workflow: Workflow | str) -> str:
    return workflow.id if isinstance(workflow, Workflow) else str(workflow)


def _stage_route(handler: StageHandler, index: int) -> Any:
    """``route(msg, redelivered)`` of stage queue ``index``: the handler's ``handle_now`` (no wrapper)."""
    return functools.partial(handler.handle_now, index)


__all__ = ["FlowEngine", "FlowStatus"]
