"""``FlowEngine.wait``: the final state of an instance, wherever it ran.

Three ways in, whichever comes first: the local shortcut (this engine ran the step that ended the
flow and wakes the futures of that instance), the engine's one listener queue (exclusive,
auto-delete, bound to ``mmate.events`` for the three terminal events, consumed without acks, so an
instance finished by another process wakes its waiters; the end of an instance that nobody here
started or waits for is kept undecoded, the routing key naming the instance, and decoded only if a
wait for it begins: on a shared broker every listener hears every flow's end), and the state store
(checked when the wait begins and now and then, so a flow that ended before the wait, or with events
off, is found too).

The looks "now and then" are one sweep for all the waits of the engine: each wait has its next look
due (``LISTENING_POLL`` after it began with the listener on, then every ``MAX_POLL``; without events
0.02 s doubling up to ``MAX_POLL``); when the first is due, the sweep looks at every wait due within
half its interval too, early, in one store call (``get_ended``: one statement for all of them instead
of a ``get`` per wait), so a lost end is noticed no later than with a look per wait.

A ``WorkflowFailedEvent`` is final only when nothing is to be compensated (no completed stage);
otherwise the wait goes on until ``WorkflowCompensatedEvent``. From an event alone the state is
rebuilt from its payload (a compensated event carries no stage results); after a failed or
compensated event the store's record is preferred when it has the final state (a completed event
has all of it).
"""
from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import OrderedDict
from typing import Any

import orjson

from mmate_fast._ext import COMPILED, load
from mmate_fast.errors import FlowTimeoutError
from mmate_fast.messaging import topology
from mmate_fast.stageflow import _state, _wire
from mmate_fast.stageflow._lifecycle import TERMINAL_EVENTS
from mmate_fast.stageflow._wire import StageResult, WorkflowState
from mmate_fast.stageflow.store import FlowStore
from mmate_fast.stageflow.store._record import ENDED_STATUSES

log = logging.getLogger("mmate_fast.stageflow")

#: final states heard of (events, local ends) kept for a wait that comes after the end
RECENT_FINALS = 10_000
#: the store is looked at again after this many seconds at most while waiting
MAX_POLL = 1.0
#: with the event listener on, the first store look of a wait started here (at most this long after
#: the wait began; the sweep may take it up to half of it early)
LISTENING_POLL = 0.5


def is_final(state: WorkflowState) -> bool:
    """True when nothing more will happen to the flow: completed, compensated, cancelled, or failed
    with no completed stage to compensate."""
    status = state.status
    if status in ("completed", "compensated", "cancelled"):
        return True
    if status == "failed":
        return not any(r.status == "completed" for r in state.stage_results)
    return False


def state_from_event(type_name: str, p: dict[str, Any]) -> WorkflowState:
    """The final state as far as a terminal event tells it (raises on a malformed payload).

    One constructor call per event, the stage results read by the compiled reader directly (the
    general ``StageResult.from_go`` only for a result it declines): this runs for every end a wait
    here hears."""
    items = p.get("stageResults")
    results = [_read_result(r, StageResult) or _from_go(r) for r in items] if items else []
    version = int(p.get("sequence", 0))
    if type_name == "WorkflowCompletedEvent":
        end = _parse_time(p["endTime"])
        return WorkflowState(p["workflowId"], p["instanceId"], "completed", None, results,
                             _data(p.get("finalData")), _parse_time(p["startTime"]), end, end, None, version)
    if type_name == "WorkflowFailedEvent":
        end = _parse_time(p["failureTime"])
        return WorkflowState(p["workflowId"], p["instanceId"], "failed", p.get("failedStageId") or None,
                             results, _data(p.get("stateData")), _parse_time(p["startTime"]), end, end,
                             p.get("error") or None, version)
    return WorkflowState(p["workflowId"], p["instanceId"], "compensated", None, results,
                         _data(p.get("workflowData")), 0, _parse_time(p["failureTime"]),
                         _parse_time(p["compensationEndTime"]), p.get("originalError") or None, version)


def _data(value: Any) -> dict[str, Any]:
    """A payload's data object as the state's ``global_data`` (a decoded dict is the event's own:
    kept, not copied)."""
    return value if value.__class__ is dict else dict(value or {})


_parse_time = _wire.parse_time
_from_go = StageResult.from_go
#: the compiled StageResult reader (None for a result not in the plain form, and always without extensions)
_read_result: Any = _state._fast_read_result
#: the compiled terminal event reader (body -> (type name, state), or None: not the plain form, and
#: always without extensions; then orjson + ``state_from_event``)
_read_event: Any = (load("flowstate").state_from_event if COMPILED["flowstate"]
                    else lambda body, state_cls, result_cls: None)


#: what a waiter's future holds when its timeout ran out
_EXPIRED: Any = object()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(_EXPIRED)


class Waiters:
    """Futures of waited instances, by instance id (see the module docstring)."""

    def __init__(self, client: Any, store: FlowStore, *, listen: bool = True) -> None:
        self.client = client
        self.store = store
        self.listen = listen
        self._futures: dict[str, set[asyncio.Future[WorkflowState]]] = {}
        #: instance id -> final state, the latest RECENT_FINALS (a flow may end before its wait begins)
        self._finals: OrderedDict[str, WorkflowState] = OrderedDict()
        #: instances this engine started while its listener listened (the latest RECENT_FINALS): their
        #: end cannot pass unheard, so their wait does not begin with a store look
        self._started: OrderedDict[str, None] = OrderedDict()
        #: instance id -> bodies of the terminal events heard for it while nobody here waited for it
        #: (the latest RECENT_FINALS instances), decoded only when a wait for it begins: on a broker
        #: shared by many engines every listener hears the end of every flow
        self._unheard: OrderedDict[str, list[bytes]] = OrderedDict()
        #: each waiting future -> [instance id, loop time of its next store look, poll interval]
        self._polls: dict[asyncio.Future[Any], list[Any]] = {}
        #: the store's ``get_ended`` (many instances in one statement), or None (one ``get`` each)
        self._get_ended: Any = getattr(store, "get_ended", None)
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._sweep_at = math.inf
        self._sweeping = False
        self._channel: Any = None
        self._queue = ""
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def resolve(self, state: WorkflowState) -> None:
        """The flow ended here (or we learned it ended): wake its waiters."""
        if is_final(state):
            self._resolve(state)

    def _resolve(self, state: WorkflowState) -> None:
        """``resolve`` of a state known to be final."""
        finals = self._finals
        iid = state.instance_id
        if iid in finals:
            finals.move_to_end(iid)
        finals[iid] = state
        if len(finals) > RECENT_FINALS:
            finals.popitem(last=False)
        waiting = self._futures.pop(iid, None)
        if waiting:
            for fut in waiting:
                if not fut.done():
                    fut.set_result(state)

    def started(self, instance_id: str) -> None:
        """``instance_id`` was just started by this engine, after ``ensure_listener``."""
        if self._channel is None:
            return
        started = self._started
        started[instance_id] = None
        if len(started) > RECENT_FINALS:
            started.popitem(last=False)

    async def wait(self, instance_id: str, timeout: float) -> WorkflowState:
        # one future and one loop timer (the timeout) per wait; the store looks are the sweep's
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        futures = self._futures
        finals = self._finals
        futures.setdefault(instance_id, set())  # registered for the whole wait (_on_event reads it)
        bodies = self._unheard.pop(instance_id, None)
        if bodies is not None:  # its end was heard before this wait began: decoded now
            for body in bodies:
                self._heard(body)
        try:
            if self.listen and self._channel is None:
                await self._bounded(self._ensure_listener(), end)
            heard = finals.get(instance_id)
            if heard is not None:
                return heard
            # started here with the listener on: its end is heard (or was: _finals), so the first
            # store look waits for the sweep (it finds an end whose event was lost); else look now
            if not (self.listen and self._started.pop(instance_id, 0) is None):
                stored = await self._bounded(self._stored(instance_id), end)
                if stored is not None:
                    return stored
                heard = finals.get(instance_id)  # heard while the store answered
                if heard is not None:
                    return heard
            now = loop.time()
            if end <= now:
                raise TimeoutError
            fut: asyncio.Future[WorkflowState] = loop.create_future()
            waiting = futures.get(instance_id)
            if waiting is None:  # resolve() takes the set it wakes
                waiting = futures[instance_id] = set()
            waiting.add(fut)
            # the listener (or the local shortcut) wakes the future: the store is only a fallback
            # then (an event lost), looked at rarely; without events it is the way in, looked at soon
            # and then less and less often
            interval = LISTENING_POLL if self.listen else 0.02
            self._polls[fut] = [instance_id, now + interval, interval]
            self._arm(now + interval)
            timer = loop.call_at(end, _expire, fut)
            try:
                result = await fut
            finally:
                timer.cancel()
                waiting.discard(fut)
                del self._polls[fut]
            if result is _EXPIRED:
                raise TimeoutError
            return result
        except TimeoutError:
            raise FlowTimeoutError(f"flow {instance_id} did not finish within {timeout:g} s: see "
                                   "await engine.status(instance_id) for where it stands") from None
        finally:
            waiting = futures.get(instance_id)
            if waiting is not None and not waiting:
                del futures[instance_id]

    # ------------------------------------------------------------------ store looks (the sweep)
    def _arm(self, when: float) -> None:
        """The sweep runs at loop time ``when`` (or earlier, if it is already due earlier)."""
        if when >= self._sweep_at:
            return
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        self._sweep_at = when
        self._sweep_timer = asyncio.get_running_loop().call_at(when, self._sweep_due)

    def _sweep_due(self) -> None:
        self._sweep_timer = None
        self._sweep_at = math.inf
        if self._sweeping or self._closed:  # a sweep in progress arms the next one when it ends
            return
        self._sweeping = True
        task = asyncio.get_running_loop().create_task(self._sweep())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        """One store look for every wait due now or within half its poll interval (looked at early,
        never late: a lost end is noticed no later than with one look per wait), in one store call
        (``get_ended``); each looked-at wait's interval doubles, up to ``MAX_POLL``."""
        try:
            now = asyncio.get_running_loop().time()
            due: dict[str, None] = {}
            for entry in self._polls.values():
                interval = entry[2]
                if entry[1] - interval * 0.5 <= now:
                    due[entry[0]] = None
                    entry[2] = interval = min(interval * 2, MAX_POLL)
                    entry[1] = now + interval
            if due:
                try:
                    ended = await self._stored_many(list(due))
                except Exception as exc:  # the store failed: the next sweep looks again
                    log.debug("store look for %d waited flows failed: %r", len(due), exc)
                    ended = []
                for state in ended:
                    self.resolve(state)
        finally:
            self._sweeping = False
            if self._polls and not self._closed:
                self._arm(min(entry[1] for entry in self._polls.values()))

    @staticmethod
    async def _bounded(aw: Any, end: float) -> Any:
        """Await ``aw`` until loop time ``end`` (TimeoutError after it): the rare awaits of a wait."""
        async with asyncio.timeout_at(end):
            return await aw

    async def _stored(self, instance_id: str) -> WorkflowState | None:
        record = await self.store.get(instance_id)
        if record is None or record.status not in ENDED_STATUSES:
            return None
        state = _wire.decode_state(record.state_json)
        return state if is_final(state) else None

    async def _stored_many(self, instance_ids: list[str]) -> list[WorkflowState]:
        """The final states the store has of ``instance_ids``."""
        get_ended = self._get_ended
        if get_ended is not None:
            records = await get_ended(instance_ids)
        else:
            got = await asyncio.gather(*(self.store.get(iid) for iid in instance_ids))
            records = [r for r in got if r is not None and r.status in ENDED_STATUSES]
        states = []
        for record in records:
            try:
                state = _wire.decode_state(record.state_json)
            except Exception as exc:  # one bad record must not hide the others' ends
                log.debug("undecodable stored state of %s: %r", record.instance_id, exc)
                continue
            if is_final(state):
                states.append(state)
        return states

    # ------------------------------------------------------------------ listener
    @property
    def listener_missing(self) -> bool:
        """True while a listener is wanted and not there yet (``ensure_listener`` has work to do)."""
        return self.listen and self._channel is None and not self._closed

    async def ensure_listener(self) -> None:
        """Listen to the terminal events (once per engine; before a flow starts, so that its end
        cannot pass unheard)."""
        if self.listen:
            await self._ensure_listener()

    async def _ensure_listener(self) -> None:
        if self._channel is not None or self._closed:
            return
        async with self._lock:
            if self._channel is not None or self._closed:
                return
            channel = await self.client.connection.channel()
            queue = f"stageflow.wait.{uuid.uuid4().hex}"
            try:
                await channel.queue_declare(queue, durable=False, exclusive=True, auto_delete=True)
                for event in TERMINAL_EVENTS:
                    await channel.queue_bind(queue, topology.EVENTS, f"evt.#.{event}")
                await channel.basic_consume(queue, self._on_event, no_ack=True, exclusive=True)
            except BaseException:
                if channel.is_open:
                    await channel.close()
                raise
            self._channel, self._queue = channel, queue

    def _on_event(self, delivery: Any) -> None:
        rk = delivery.routing_key  # evt.{instanceId}.{Type}
        iid = rk[4:rk.rfind(".")] if rk.__class__ is str and rk.startswith("evt.") else ""
        if iid and iid not in self._futures and iid not in self._started:
            if iid in self._finals:
                return  # ended here (the local shortcut came first)
            # nobody here waits for it (yet): kept undecoded, decoded if a wait for it begins
            unheard = self._unheard
            bodies = unheard.get(iid)
            if bodies is None:
                unheard[iid] = [bytes(delivery.body)]
                if len(unheard) > RECENT_FINALS:
                    unheard.popitem(last=False)
            else:
                bodies.append(bytes(delivery.body))
            return
        self._heard(delivery.body)

    def _heard(self, body: Any) -> None:
        """A terminal event's body: wake the waits of its instance, or remember its end."""
        try:
            got = _read_event(body, WorkflowState, StageResult)  # the compiled reader, in one pass
            if got is None:  # not its plain form (or no extensions): the general path
                env = orjson.loads(body)
                payload = env["payload"]
                if payload["instanceId"] in self._finals:
                    return  # ended here (the local shortcut came first)
                type_name = env["type"]
                state = state_from_event(type_name, payload)
            else:
                type_name, state = got
                if state.instance_id in self._finals:
                    return
        except Exception as exc:  # a malformed event on our own queue: nothing to wake
            log.debug("ignoring an undecodable terminal event: %r", exc)
            return
        if type_name == "WorkflowCompletedEvent":
            # final, and it carries the whole final state (results, finalData, times, version), the
            # store's record to the byte: no lookup
            self._resolve(state)
            return
        if not is_final(state):
            return
        if state.instance_id not in self._futures:  # nobody waits yet: remember it
            self._resolve(state)
            return
        task = asyncio.get_running_loop().create_task(self._resolve_from(state))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve_from(self, state: WorkflowState) -> None:
        """Prefer the store's final state (it has everything); else the event's."""
        try:
            stored = await self._stored(state.instance_id)
        except Exception as exc:
            log.debug("store lookup after a terminal event failed: %r", exc)
            stored = None
        self.resolve(stored if stored is not None else state)

    async def close(self) -> None:
        self._closed = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        channel, self._channel = self._channel, None
        if channel is not None and channel.is_open:
            try:
                await channel.close()
            except Exception as exc:
                log.debug("closing the wait listener channel failed: %r", exc)


__all__ = ["TERMINAL_EVENTS", "Waiters", "is_final", "state_from_event"]
