"""Publish typed messages with Mmate's routing: events, commands, queries, replies, generic.

The publisher needs only a channel-like target with ``publish_nowait``/``publish``/
``wait_for_confirms``/``drain`` (a Channel or a ChannelPool of any transport). No lock anywhere:
each publish is built and appended to the connection's write buffer in one step.

Confirmed publishing without the wait: in confirm mode ``publish()`` sends the message at once and
returns the broker's confirm future itself (it resolves with the message id), not a coroutine, so
any number of publishes share the broker's round trip: ``await`` it (stored when it returns),
``asyncio.gather`` a window of them (no Task per message), or publish from many tasks; one
``basic.ack(multiple=True)`` settles all the confirms it covers in one pass. One timer per publisher
enforces the confirm timeout of every pending publish (``_ConfirmDeadlines``), no timer per message.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping
from itertools import islice
from typing import Any

from mmate_fast import _checks, errors
from mmate_fast._ext import load
from mmate_fast.contracts import MessageKind, kind_of, message_type
from mmate_fast.messaging import observer as _obs
from mmate_fast.messaging import topology
from mmate_fast.messaging._lean import check_wire_profile, lean_properties, without_header_table
from mmate_fast.messaging.outgoing import SOURCE, Outgoing, build, publish_plan
from mmate_fast.messaging.pipeline import Pipeline, PublishContext

_frames = load("frames")
_short_str = _checks.short_str
_perf = time.perf_counter
log = logging.getLogger("mmate_fast.publisher")


def default_route(msg: Any, kind: MessageKind, type_name: str) -> tuple[str, str]:
    """Exchange and routing key of ``msg`` as mmate-go's Publish* methods choose them."""
    if kind is MessageKind.EVENT:
        return topology.EVENTS, topology.event_routing_key(getattr(msg, "aggregate_id", "") or "", type_name)
    if kind is MessageKind.COMMAND:
        return topology.COMMANDS, topology.command_routing_key(getattr(msg, "target_service", "") or "",
                                                               type_name)
    if kind is MessageKind.QUERY:
        return topology.QUERIES, topology.query_routing_key(type_name)
    if kind is MessageKind.REPLY:
        return topology.MESSAGES, topology.reply_routing_key(type_name)
    return topology.MESSAGES, topology.message_routing_key(type_name)


def require_target_service(command: Any) -> None:
    """A command is routed to ``cmd.{targetService}.{Type}``: refuse one without a target service."""
    if not getattr(command, "target_service", ""):
        raise errors.ContractError(
            f"{message_type(command)}.target_service is empty: a command needs the service it is for")


def _observe(observer: Any, msg: Any, seconds: float, error: BaseException | None) -> None:
    try:
        observer.published(msg, seconds, error)
    except Exception:
        log.exception("publish observer %r failed (ignored)", observer)


def _retrieve(confirm: asyncio.Future[Any]) -> None:
    """Done-callback of a confirm future nobody awaits any more: mark its exception retrieved."""
    if not confirm.cancelled():
        confirm.exception()


#: how long an awaited publish or ``publish_batch`` waits for a confirm when given no timeout (the
#: transport's default round-trip timeout)
_CONFIRM_WAIT = 30.0
#: every this many publishes one is awaited through the transport (back-pressure and fairness); in
#: confirm mode that one waits for write-buffer room before its confirm
_AWAIT_EVERY = 128


async def _published(message_id: str) -> str:
    """The result of a publish already written (the one-call path without confirms)."""
    return message_id


_EVENT = MessageKind.EVENT
_REPLY = MessageKind.REPLY
#: the publish options a plan covers (any other option takes the general path)
_PLAN_OPTIONS = frozenset({"kind", "exchange", "routing_key", "persistent"})
#: the options ``publish_nowait`` takes on the one-call path: the plan's, and the per-call
#: values a plan writes itself (the request/reply hops: correlation id, reply address, and a routing
#: key given with an exchange, e.g. a reply's: the requester's queue)
_CALL_OPTIONS = _PLAN_OPTIONS | {"correlation_id", "reply_to"}
#: the routing-key slot of a plan key whose routing key comes with each call
_PER_CALL: Any = object()
#: a class the one-call path cannot publish (generic messages, a class whose plan failed)
_NO_PLAN = False
_PLANS_MAX = 1024
#: the routing-key separator used to split a default route into prefix and suffix
_SPLIT = "\x00"


def _route_parts(kind: MessageKind, type_name: str) -> tuple[str, str, str] | None:
    """(attribute, prefix, suffix) of a default routing key taken from each message, or None when
    the default routing key is the same for every message of the type."""
    if kind is MessageKind.EVENT:
        prefix, suffix = topology.event_routing_key(_SPLIT, type_name).split(_SPLIT)
        return "aggregate_id", prefix, suffix
    if kind is MessageKind.COMMAND:
        prefix, suffix = topology.command_routing_key(_SPLIT, type_name).split(_SPLIT)
        return "target_service", prefix, suffix
    return None


def _failed(exc: BaseException) -> asyncio.Future[Any]:
    """A future that raises ``exc`` when awaited (a publish refused before the broker)."""
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.set_exception(exc)
    return fut


class _ConfirmDeadlines:
    """Fails the confirm futures still unsettled ``wait`` s after their publish with OperationTimeout.

    One timer for every pending publish instead of one per message: futures published between two
    ticks form a batch stamped with the later tick, so none expires early and none more than two
    ticks late; settled futures are dropped at each tick. The timer stops when nothing is pending.
    """

    __slots__ = ("_batches", "_recent", "_tick_s", "_timer", "wait")

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self._tick_s = max(0.05, min(1.0, wait / 10))
        self._recent: list[asyncio.Future[Any]] = []
        self._batches: deque[tuple[float, list[asyncio.Future[Any]]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, fut: asyncio.Future[Any]) -> None:
        self._recent.append(fut)
        if self._timer is None:
            self._timer = fut.get_loop().call_later(self._tick_s, self._tick, fut.get_loop())

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        batches = self._batches
        if self._recent:
            recent, self._recent = self._recent, []
            batches.append((now, recent))
        kept: deque[tuple[float, list[asyncio.Future[Any]]]] = deque()
        expired = 0
        for stamp, futs in batches:
            pending = [f for f in futs if not f.done()]
            if not pending:
                continue
            if now - stamp >= self.wait:
                for f in pending:
                    f.set_exception(errors.OperationTimeout(
                        f"no publisher confirm within {self.wait} s; the message may or may not be stored"))
                    expired += 1
            else:
                kept.append((stamp, pending))
        self._batches = kept
        if expired:
            log.warning("%d publish(es) got no publisher confirm within %s s", expired, self.wait)
        self._timer = loop.call_later(self._tick_s, self._tick, loop) if kept or self._recent else None


class Publisher:
    """Publishes Mmate messages on ``target`` (a Channel or ChannelPool).

    With ``confirms=True`` (the target's channels in confirm mode) every awaited publish returns
    only once the broker has stored the message, and raises PublishNackedError otherwise.
    ``wire_profile="lean"`` sends Go's own properties without the header table (messaging/_lean.py);
    ``"go"`` (default) sends Go's headers and the .NET mapping's properties.
    """

    def __init__(self, target: Any, *, confirms: bool = False, pipeline: Pipeline | None = None,
                 source: str | None = None, wire_profile: str = "go") -> None:
        self._target = target
        self.confirms = confirms
        self.wire_profile = check_wire_profile(wire_profile)
        self._lean = wire_profile == "lean"
        #: interceptors (before/after hooks); an empty pipeline costs nothing
        self.pipeline = pipeline if pipeline is not None else Pipeline()
        self.source = source
        self.published = 0
        self._unawaited = 0
        self._deadlines = _ConfirmDeadlines(_CONFIRM_WAIT)
        #: a MessageObserver told about every awaited publish (mmate_fast.messaging.observer), or None
        self.observer: Any = None
        #: a MessageTracer called before every awaited publish is encoded and after it (or None)
        self.tracer: Any = None
        #: one-call publish plans by (class, kind, exchange, routing key, persistent, mandatory)
        self._plans: dict[tuple[Any, ...], Any] = {}
        #: the channel the one-call path writes into (``target.publish_sink()``), refreshed by the
        #: general path (every _AWAIT_EVERY-th publish goes there)
        self._sink: Any = None

    # ------------------------------------------------------------------ building blocks
    def prepare(self, msg: Any, *, exchange: str | None = None, routing_key: str | None = None,
                correlation_id: str | None = None, headers: Mapping[str, Any] | None = None,
                ttl: float | None = None, priority: int | None = None, persistent: bool = True,
                reply_to: str | None = None, delay: float | None = None,
                kind: MessageKind | None = None) -> tuple[str, str, Outgoing]:
        """Build the wire form and route of ``msg``: (exchange, routing_key, outgoing).

        ``ttl`` and ``delay`` are seconds. ``ttl`` becomes the AMQP ``expiration`` property (the
        broker drops or dead-letters the message after it), ``priority`` the AMQP ``priority``.
        What RabbitMQ would refuse (a negative ttl, a priority outside 0-255, a name, routing key,
        id or header longer than 255 bytes, ...) raises InvalidArgumentError (a negative delay:
        SchedulingError), a payload JSON cannot carry PayloadEncodeError; nothing is sent then.
        """
        type_name = message_type(msg)
        k = kind if kind is not None else kind_of(msg)
        if exchange is None or routing_key is None:
            ex, rk = default_route(msg, k, type_name)
            if exchange is None:
                exchange = ex
            else:
                _short_str(exchange, "exchange", "exchange name")
            routing_key = rk if routing_key is None else routing_key
        else:
            _short_str(exchange, "exchange", "exchange name")
        # _short_str's own O(1) test, inlined: this runs for every publish
        if not (routing_key.__class__ is str and len(routing_key) <= 255 and routing_key.isascii()):
            _short_str(routing_key, "routing_key", "routing key")  # raises unless non-ASCII and short
        ttl_ms = _checks.ttl_ms(ttl) if ttl is not None else None
        out = build(msg, correlation_id=correlation_id, headers=headers, ttl_ms=ttl_ms, priority=priority,
                    persistent=persistent, delay_ms=_checks.delay_ms(delay) if delay is not None else None,
                    reply_to=reply_to, type_name=type_name, source=self.source or SOURCE, kind=k)
        if self._lean and not headers and delay is None:  # only the standard headers: Go's properties
            # (interceptors, e.g. signing, read the message id and timestamp from the properties)
            out.properties = (without_header_table(out.properties) if self.pipeline.has_publish
                              else lean_properties(persistent, ttl_ms, priority))
            out.headers = {}
        return exchange, routing_key, out

    def publish_nowait(self, msg: Any, *, mandatory: bool = False,
                       **options: Any) -> asyncio.Future[bool] | None:
        """Queue ``msg`` for the next write; returns the confirm future in confirm mode.

        Not available with publish interceptors (they are async): use ``await publish(...)``.
        """
        if self.pipeline.has_publish:
            raise errors.MmateError("publish_nowait() cannot run the publish interceptors; "
                                    "use await publish() or publish_batch()")
        if options.keys() <= _CALL_OPTIONS:  # the one-call path (see publish)
            exchange = options.get("exchange")
            routing_key = options.get("routing_key")
            per_call = exchange is not None and routing_key is not None
            key = (msg.__class__, options.get("kind"), exchange, _PER_CALL if per_call else routing_key,
                   options.get("persistent", True), mandatory)
            plan = self._plans.get(key)
            if plan is None:
                plan = self._new_plan(key, msg)
            if plan:
                corr = options.get("correlation_id")
                reply_to = options.get("reply_to")
                rk = routing_key if per_call else None
                if not self.confirms:
                    sink = self._sink
                    if sink is None or not sink.open:  # (e.g. the reply publisher: never awaited)
                        sink = self._refresh_sink()
                    if sink is not None and sink.write(plan, msg, corr, reply_to, rk) is not None:
                        self.published += 1
                        return None
                r = plan.encode(msg, corr, reply_to, rk)
                if r is not None:
                    fut = self._target.publish_nowait(r[2], plan.exchange, r[1], r[3], mandatory=mandatory)
                    self.published += 1
                    return fut
        exchange, routing_key, out = self.prepare(msg, **options)
        self.published += 1
        return self._target.publish_nowait(out.body, exchange, routing_key, out.properties,
                                           mandatory=mandatory)

    def _refresh_sink(self) -> Any:
        """The target's ``publish_sink()`` now (None: that transport has none), kept for the
        one-call path."""
        get_sink = getattr(self._target, "publish_sink", None)
        sink = self._sink = get_sink() if get_sink is not None else None
        return sink

    def reply_nowait(self, reply: Any, reply_to: str, correlation_id: str | None,
                     persistent: bool = True) -> asyncio.Future[bool] | None:
        """``publish_nowait(reply, exchange="", routing_key=reply_to, correlation_id=...,
        kind=REPLY, persistent=...)`` (the responder's reply hop, same bytes) without the keyword
        packing: the class's plan (one for every reply queue) written into the channel's buffer."""
        if not self.confirms and not self.pipeline.has_publish:
            key = (reply.__class__, _REPLY, "", _PER_CALL, persistent, False)
            plan = self._plans.get(key)
            if plan is None:
                plan = self._new_plan(key, reply)
            if plan:
                sink = self._sink
                if sink is None or not sink.open:
                    sink = self._refresh_sink()
                if sink is not None and sink.write(plan, reply, correlation_id, None, reply_to) is not None:
                    self.published += 1
                    return None
        return self.publish_nowait(reply, exchange="", routing_key=reply_to, correlation_id=correlation_id,
                                   kind=_REPLY, persistent=persistent)

    def reply_plan(self, reply: Any, persistent: bool = True) -> Any | None:
        """The plan ``reply_nowait`` writes ``reply``'s class with (cached per class and
        ``persistent``: one for every reply queue), or None when it takes the general path (confirm
        mode, publish interceptors, a class the one-call path cannot publish). The Client's compiled
        result hook keeps it to write replies into ``_sink`` itself (``replystep.ReplyHook``)."""
        if self.confirms or self.pipeline.has_publish:
            return None
        key = (reply.__class__, _REPLY, "", _PER_CALL, persistent, False)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._new_plan(key, reply)
        return plan or None

    def plan_for(self, msg: Any, *, mandatory: bool = False, **options: Any) -> Any | None:
        """The compiled one-call plan (``wire.PublishPlan``, cached) of ``msg``'s class with these
        options (``kind``, ``exchange``, ``routing_key``, ``persistent``), for writing into another
        channel's ``PublishSink`` (the bridge sends its requests on its own channel this way, with
        ``correlation_id`` and ``reply_to`` given per call). None when the publisher has publish
        interceptors, for other options and for what the general path must handle (generic
        messages, a route or name the broker would refuse): publish with ``prepare`` then."""
        if self.pipeline.has_publish or not options.keys() <= _PLAN_OPTIONS:
            return None
        key = (msg.__class__, options.get("kind"), options.get("exchange"), options.get("routing_key"),
               options.get("persistent", True), mandatory)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._new_plan(key, msg)
        return plan or None

    def publish(self, msg: Any, *, mandatory: bool = False, timeout: float | None = None,
                kind: MessageKind | None = None, exchange: str | None = None, routing_key: str | None = None,
                persistent: bool = True, **options: Any) -> Awaitable[str]:
        """Publish ``msg`` (route from its kind unless ``exchange``/``routing_key`` are given);
        awaiting the result gives its message id, in confirm mode once the broker has stored it.

        In confirm mode (no publish interceptors, observer or tracer, no ``timeout``) the message is
        sent now and the confirm future returned: ``asyncio.gather`` over many of them costs no Task
        per message, and the publishes share the broker's confirms. An error raised before the
        broker (InvalidArgumentError, PayloadEncodeError, ...) is raised where the result is
        awaited, as from a coroutine; nothing was sent then.
        """
        if (timeout is None and not options and self.observer is None and self.tracer is None
                and not self.pipeline.has_publish):
            key = (msg.__class__, kind, exchange, routing_key, persistent, mandatory)
            plan = self._plans.get(key)
            if plan is None:
                plan = self._new_plan(key, msg)
            if plan:
                sink = self._sink
                if sink is not None:  # the hot path, inlined: written into the channel's buffer
                    n = self._unawaited + 1
                    if n < _AWAIT_EVERY:
                        message_id = sink.write(plan, msg)
                        if message_id is not None:
                            self._unawaited = n
                            self.published += 1
                            return _published(message_id)
                r = self._planned(plan, msg, mandatory)
                if r is not None:
                    return r
        # the general path: the options as the caller gave them
        if kind is not None:
            options["kind"] = kind
        if exchange is not None:
            options["exchange"] = exchange
        if routing_key is not None:
            options["routing_key"] = routing_key
        if persistent is not True:
            options["persistent"] = persistent
        if (self.confirms and timeout is None and self.observer is None and self.tracer is None
                and not self.pipeline.has_publish):
            try:
                exchange, routing_key, out = self.prepare(msg, **options)
                fut = self._target.publish_nowait(out.body, exchange, routing_key, out.properties,
                                                  mandatory=mandatory, confirm_value=out.message_id)
            except Exception as exc:
                return _failed(exc)
            self.published += 1
            if fut is None:  # the target is not in confirm mode after all: nothing to wait for
                fut = asyncio.get_running_loop().create_future()
                fut.set_result(out.message_id)
                return fut
            self._deadlines.add(fut)
            n = self._unawaited + 1
            if n >= _AWAIT_EVERY:
                self._unawaited = 0
                return self._after_drain(fut)
            self._unawaited = n
            return fut
        return self._publish(msg, mandatory, timeout, options)

    def _planned(self, plan: Any, msg: Any, mandatory: bool) -> Awaitable[str] | None:
        """The one-call path (no interceptors, observer, tracer, timeout or per-message options): the
        message is written straight into the channel's write buffer by its class's compiled plan
        (without confirms), or encoded in one call and handed to ``publish_nowait`` (confirms, other
        transports). None: take the general path (nothing was sent)."""
        if not self.confirms:
            n = self._unawaited + 1
            if n >= _AWAIT_EVERY:  # the general path's awaited publish: back-pressure, sink refresh
                return None
            sink = self._sink
            if sink is not None:
                message_id = sink.write(plan, msg)
                if message_id is None:
                    self._sink = None  # closed since (or a message for the general path)
                    return None
                self._unawaited = n
                self.published += 1
                return _published(message_id)
        r = plan.encode(msg)
        if r is None:
            return None
        message_id, rk, body, props = r
        try:
            fut = self._target.publish_nowait(body, plan.exchange, rk, props, mandatory=mandatory,
                                              confirm_value=message_id)
        except Exception as exc:
            return _failed(exc)
        self.published += 1
        if fut is None:  # no confirms (or the target is not in confirm mode after all)
            if self.confirms:
                fut = asyncio.get_running_loop().create_future()
                fut.set_result(message_id)
                return fut
            self._unawaited += 1
            return _published(message_id)
        self._deadlines.add(fut)
        n = self._unawaited + 1
        if n >= _AWAIT_EVERY:
            self._unawaited = 0
            return self._after_drain(fut)
        self._unawaited = n
        return fut

    def _new_plan(self, key: tuple[Any, ...], msg: Any) -> Any:
        """Build (and cache) the plan of ``key``; _NO_PLAN for what the general path must handle."""
        cls, kind, exchange, routing_key, persistent, mandatory = key
        if routing_key is _PER_CALL:
            routing_key = ""  # never written: each call gives its own
        plan: Any = _NO_PLAN
        try:
            if not getattr(cls, "__mmate_generic__", False) and isinstance(persistent, bool):
                type_name = message_type(msg)
                k = kind if kind is not None else kind_of(msg)
                if type(k) is not MessageKind:  # the general path's checks go by identity
                    raise TypeError(k)
                if exchange is None or routing_key is None:
                    ex, rk = default_route(msg, k, type_name)
                    exchange = ex if exchange is None else exchange
                    route = _route_parts(k, type_name) if routing_key is None else None
                    if routing_key is None and route is None:
                        routing_key = rk
                else:
                    route = None
                _short_str(exchange, "exchange", "exchange name")
                if routing_key is not None:
                    _short_str(routing_key, "routing_key", "routing key")
                lean = lean_properties(persistent, None, None) if self._lean else None
                plan = publish_plan(cls, k, type_name, exchange, routing_key, route, persistent=persistent,
                                    mandatory=mandatory, source=self.source or SOURCE, lean_properties=lean)
        except Exception:  # the general path raises the real error
            plan = _NO_PLAN
        if len(self._plans) >= _PLANS_MAX:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    async def _after_drain(self, fut: asyncio.Future[str]) -> str:
        """The confirm of an already sent publish, awaited once the write buffer has room (so a
        publisher that never waits for its confirms cannot grow the buffer without bound)."""
        try:
            await self._target.drain()
        except BaseException:
            fut.add_done_callback(_retrieve)
            raise
        return await fut

    async def _publish(self, msg: Any, mandatory: bool, timeout: float | None,
                       options: dict[str, Any]) -> str:
        """``publish`` with interceptors, observer or tracer, an explicit timeout, or no confirms."""
        observer = self.observer
        t0 = _perf() if observer is not None else 0.0
        tracer = self.tracer
        token = None
        if tracer is not None:
            try:  # inlined _obs.start_publish: this runs for every publish
                token = tracer.start_publish(msg, options)
            except Exception:
                _obs.tracer_failed(tracer)
        exchange = routing_key = None
        try:
            if self.pipeline.has_publish:
                message_id = await self._intercepted(msg, mandatory, timeout, options, wait=True)
            else:
                exchange, routing_key, out = self.prepare(msg, **options)
                target = self._target
                if self.confirms:
                    await target.publish(out.body, exchange, routing_key, out.properties, mandatory=mandatory,
                                         timeout=timeout)
                else:
                    # no confirm to wait for: queue it, and every _AWAIT_EVERY publishes go through the
                    # transport's awaited publish (write-buffer back-pressure; the memory broker yields)
                    n = self._unawaited + 1
                    if n >= _AWAIT_EVERY:
                        self._unawaited = 0
                        await target.publish(out.body, exchange, routing_key, out.properties,
                                             mandatory=mandatory, timeout=timeout)
                        self._refresh_sink()
                    else:
                        self._unawaited = n
                        target.publish_nowait(out.body, exchange, routing_key, out.properties,
                                              mandatory=mandatory)
                self.published += 1
                message_id = out.message_id
        except BaseException as exc:
            if token is not None:
                _obs.end_publish(tracer, token, "", exchange, routing_key, exc)
            if observer is not None:
                _observe(observer, msg, _perf() - t0, exc)
            raise
        if token is not None:
            _obs.end_publish(tracer, token, message_id, exchange, routing_key, None)
        if observer is not None:
            _observe(observer, msg, _perf() - t0, None)
        return message_id

    # ------------------------------------------------------------------ Mmate verbs
    def publish_event(self, event: Any, *, exchange: str | None = None, routing_key: str | None = None,
                      persistent: bool = True, mandatory: bool = False, **options: Any) -> Awaitable[str]:
        """To ``mmate.events`` with ``evt.{aggregateId}.{Type}``."""
        if not options and self.observer is None and self.tracer is None and not self.pipeline.has_publish:
            # publish()'s hot path, inlined (the busiest call of an event pipeline)
            key = (event.__class__, _EVENT, exchange, routing_key, persistent, mandatory)
            plan = self._plans.get(key)
            if plan is None:
                plan = self._new_plan(key, event)
            if plan:
                sink = self._sink
                if sink is not None:
                    n = self._unawaited + 1
                    if n < _AWAIT_EVERY:
                        message_id = sink.write(plan, event)
                        if message_id is not None:
                            self._unawaited = n
                            self.published += 1
                            return _published(message_id)
                r = self._planned(plan, event, mandatory)
                if r is not None:
                    return r
        return self.publish(event, kind=_EVENT, exchange=exchange, routing_key=routing_key,
                            persistent=persistent, mandatory=mandatory, **options)

    def publish_command(self, command: Any, **options: Any) -> Awaitable[str]:
        """To ``mmate.commands`` with ``cmd.{targetService}.{Type}``."""
        require_target_service(command)
        return self.publish(command, kind=MessageKind.COMMAND, **options)

    def publish_query(self, query: Any, **options: Any) -> Awaitable[str]:
        """To ``mmate.queries`` with ``qry.{Type}``."""
        return self.publish(query, kind=MessageKind.QUERY, **options)

    async def publish_reply(self, reply: Any, reply_to: str, *, correlation_id: str | None = None,
                            **options: Any) -> str:
        """To the requester's reply queue through the default exchange (routing key = ``reply_to``)."""
        if not reply_to:
            raise errors.ContractError("publish_reply needs the requester's reply address (reply_to)")
        return await self.publish(reply, exchange="", routing_key=reply_to, correlation_id=correlation_id,
                                  kind=MessageKind.REPLY, **options)

    async def publish_batch(self, messages: Iterable[Any], *, timeout: float | None = None,
                            window: int = 2000, mandatory: bool = False, **options: Any) -> list[str]:
        """Publish many messages pipelined; returns their ids in order once every one is confirmed
        (confirm mode) or written.

        Messages are encoded and sent ``window // 2`` at a time while the broker confirms the
        earlier ones: the next chunk is encoded while the last one is on its way, and sent as soon
        as at most ``window`` would be unconfirmed (without confirms, write-buffer room is awaited
        after each chunk). Each chunk is encoded before any of it is sent, so a message refused
        before the broker (InvalidArgumentError, PayloadEncodeError) fails its chunk without sending
        half of it; the earlier chunks were sent and are confirmed before that error is raised (its
        note says how many messages). A nacked or returned publish raises its error (the oldest
        failure first). ``timeout`` bounds each wait for a confirm (default 30 s). With publish
        interceptors, an observer or a tracer a chunk is sent message by message / confirmed before
        the next one is built (observers are told each message's chunk time).
        """
        if type(window) is not int or window < 1:
            raise errors.InvalidArgumentError(f"window must be a whole number of at least 1, got {window!r}",
                                              "window")
        ids: list[str] = []
        target = self._target
        intercepted = self.pipeline.has_publish
        observer = self.observer
        tracer = self.tracer
        chunk = max(1, window // 2)
        plans = self._plans
        planned = options.keys() <= _PLAN_OPTIONS and not intercepted
        plan_options = (options.get("kind"), options.get("exchange"), options.get("routing_key"),
                        options.get("persistent", True), mandatory)
        # plain path: the next chunk is encoded while this one is confirmed, sent once there is room
        pipelined = observer is None and tracer is None and not intercepted
        # the other paths: unconfirmed publishes left in flight when the next chunk is built
        ahead = 0 if observer is not None or tracer is not None else window - chunk
        traced: list[tuple[Any, str, str, str]] = []  # this chunk's (token, id, exchange, routing key)
        inflight: deque[asyncio.Future[Any]] = deque()  # confirms, oldest first
        it = iter(messages)
        batch: list[Any] = []
        t0 = 0.0
        try:
            while True:
                batch = list(islice(it, chunk))
                if observer is not None:
                    t0 = _perf()
                confirms: list[asyncio.Future[bool]] = []
                if intercepted:
                    before = len(ids)
                    for msg in batch:
                        opts = dict(options)
                        token = _obs.start_publish(tracer, msg, opts) if tracer is not None else None
                        ids.append(await self._intercepted(msg, mandatory, timeout, opts,
                                                           wait=False, confirms=confirms))
                        if token is not None:
                            traced.append((token, ids[-1], "", ""))
                    n = len(ids) - before
                    inflight.extend(confirms)
                else:
                    try:
                        ready: list[tuple[str, str, bytes, bytes, str]] = []
                        if tracer is None and planned:
                            for msg in batch:  # the one-call encode of each class's plan
                                key = (msg.__class__, *plan_options)
                                plan = plans.get(key)
                                if plan is None:
                                    plan = self._new_plan(key, msg)
                                r = plan.encode(msg) if plan else None
                                if r is None:
                                    ex, rk, out = self.prepare(msg, **options)
                                    ready.append((ex, rk, out.body, out.properties, out.message_id))
                                else:
                                    ready.append((plan.exchange, r[1], r[2], r[3], r[0]))
                        elif tracer is None:
                            for msg in batch:
                                ex, rk, out = self.prepare(msg, **options)
                                ready.append((ex, rk, out.body, out.properties, out.message_id))
                        else:
                            for msg in batch:
                                opts = dict(options)
                                token = _obs.start_publish(tracer, msg, opts)
                                ex, rk, out = self.prepare(msg, **opts)
                                ready.append((ex, rk, out.body, out.properties, out.message_id))
                                if token is not None:
                                    traced.append((token, out.message_id, ex, rk))
                    except Exception:
                        if inflight:  # what was sent before the refused message is settled first
                            await self._confirmed(inflight, 0, timeout)
                        raise
                    n = len(ready)
                    if pipelined and inflight:  # room for this chunk: at most ``window`` unconfirmed
                        await self._confirmed(inflight, window - n, timeout)
                    publish_nowait = target.publish_nowait
                    for exchange, routing_key, body, props, message_id in ready:
                        confirm = publish_nowait(body, exchange, routing_key, props, mandatory=mandatory)
                        if confirm is not None:
                            inflight.append(confirm)
                        ids.append(message_id)
                last = n < chunk
                if inflight:
                    if last:
                        await self._confirmed(inflight, 0, timeout)
                    elif pipelined:
                        await asyncio.sleep(0)  # this chunk is written before the next one is encoded
                    else:
                        await self._confirmed(inflight, ahead, timeout)
                elif n:
                    await target.drain(timeout)
                if traced:
                    for token, message_id, ex, rk in traced:
                        _obs.end_publish(tracer, token, message_id, ex, rk, None)
                    traced = []
                if observer is not None:  # each message took its chunk's time
                    elapsed = _perf() - t0
                    for msg in batch:
                        _observe(observer, msg, elapsed, None)
                batch = []
                if last:
                    return ids
        except BaseException as exc:
            for confirm in inflight:  # settles after we gave up on it: nobody will retrieve it
                confirm.add_done_callback(_retrieve)
            for token, message_id, ex, rk in traced:
                _obs.end_publish(tracer, token, message_id, ex, rk, exc)
            if observer is not None:
                elapsed = _perf() - t0
                for msg in batch:
                    _observe(observer, msg, elapsed, exc)
            if ids and isinstance(exc, errors.MmateError):
                exc.add_note(f"publish_batch: {len(ids)} messages of this batch were sent before this error "
                             f"(ids {ids[0]} .. {ids[-1]})")
            raise
        finally:
            self.published += len(ids)

    async def _intercepted(self, msg: Any, mandatory: bool, timeout: float | None,
                           options: dict[str, Any], *, wait: bool,
                           confirms: list[asyncio.Future[bool]] | None = None) -> str:
        """Publish through the interceptor pipeline; returns the message id ("" when dropped).
        Without ``wait``, the confirm future (confirm mode) is appended to ``confirms``."""
        ctx = PublishContext(msg, options.pop("exchange", None), options.pop("routing_key", None), options)

        def encode(c: PublishContext) -> None:
            c.exchange, c.routing_key, c.outgoing = self.prepare(
                c.message, exchange=c.exchange, routing_key=c.routing_key, headers=c.headers, **c.options)

        async def send(c: PublishContext) -> None:
            out = c.outgoing
            props = out.properties
            if c.amqp_headers:
                decoded, _ = _frames.decode_properties(props)
                decoded.headers = {**(decoded.headers or {}), **c.amqp_headers}
                props = _frames.encode_properties(decoded)
            if wait:
                await self._target.publish(out.body, c.exchange, c.routing_key, props, mandatory=mandatory,
                                           timeout=timeout)
            else:
                confirm = self._target.publish_nowait(out.body, c.exchange, c.routing_key, props,
                                                      mandatory=mandatory)
                if confirm is not None and confirms is not None:
                    confirms.append(confirm)

        await self.pipeline.publish(ctx, encode, send)
        if ctx.dropped or ctx.outgoing is None:
            return ""
        if wait:
            self.published += 1
        return str(ctx.outgoing.message_id)

    @staticmethod
    async def _confirmed(inflight: deque[asyncio.Future[Any]], limit: int, timeout: float | None) -> None:
        """Wait until at most ``limit`` of ``inflight`` (oldest first) are unconfirmed; the settled
        ones leave it, the first failure among them is raised. One wake-up per broker ack (a
        ``multiple=True`` ack settles many), not per message."""
        wait = _CONFIRM_WAIT if timeout is None else timeout
        while inflight:
            oldest = inflight[0]
            if not oldest.done():
                if len(inflight) <= limit:
                    return
                # asyncio.wait: cancelling the batch must not cancel the confirm future itself
                _done, pending = await asyncio.wait((oldest,), timeout=wait)
                if pending:
                    raise errors.OperationTimeout(
                        f"{len(inflight)} publishes of this batch still unconfirmed after {wait} s; they may "
                        "or may not be stored")
            inflight.popleft()
            exc = None if oldest.cancelled() else oldest.exception()
            if exc is not None:
                raise exc
