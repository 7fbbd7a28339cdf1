"""Subscriber: consume a queue, decode, dispatch to handlers, ack/reject.

Ack policy: a message is acked only after all its handlers finished without error (acks of
consecutive deliveries leave as one ``basic.ack(multiple)`` per loop turn). A body that is not an
envelope, a type without handler or registered class, a payload that does not fit the class, or a
handler exception: the failed delivery goes to the subscription's failure handler (e.g. a retry),
and what that does not settle ends with :meth:`Subscription.give_up`: the subscriber's dead-letterer
when dead-lettering is on (the Client wires the reliability layer's: ``dlq.{queue}`` with the reason;
this layer knows nothing of it), else reject without requeue (lost unless the queue has a broker
dead-letter exchange). It is counted and logged; the consumer goes on. A settle the transport dropped
as stale (a delivery from before a reconnect: the broker redelivers it) is counted in
``stats.stale_settles``, not as acked or rejected.

Before anything decodes a body, the pipeline's wire stage (``Interceptor.verify_delivery``:
signatures, decryption) runs on the raw delivery, whatever the interceptor order; a delivery it
refuses (``bad-signature``, ``expired``, ``replayed``, ``bad-ciphertext``, ...) is given up at once,
like one whose properties did not decode (``bad-properties``) or whose body was over the
connection's ``max_message_size`` (``too-large``: its body was dropped as it came, so its DLQ
record is the properties alone and the original is rejected, for a broker dead-letter policy to
keep the body): no retry could help them.

A consumer the broker cancels (its queue was deleted, a quorum/mirrored queue failed over) or whose
channel was closed under it comes back: the subscription re-declares its queue and bindings (as its
creator declared them), then consumes again — on a new channel with its QoS when the old one is
closed — with the recovery backoff between attempts; it logs a warning, counts
``stats.consumer_restarts``, and stops trying once stopped or its connection is closed for good.

A ``Subscriber.observer`` (:mod:`mmate_fast.messaging.observer`) is told how long the handlers of each
delivery ran and whether they raised: a plain call, so metrics keep plain handlers inline.

Plain handlers run inline in the reader (no Task per delivery); ``async`` handlers get one Task per
delivery, at most ``concurrency`` at a time (the rest wait, in order, in a local queue, which the
prefetch bounds: prefetch 0 is sent as ``UNLIMITED_PREFETCH_FACTOR * concurrency``).

Settle-later handlers (:func:`settles_later`): a plain handler that returns an awaitable (say the
confirm future of what it published) runs inline too, and the delivery is settled when that awaitable
is done, from its done-callback, with no Task in between (a coroutine it returns gets one). Until then
it counts as in flight like an async handler's delivery (``concurrency``, the backlog, ``stop()``
waiting for it); the awaitable failing is a handler failure (same failure handler / DLQ), its
cancellation requeues the delivery as a cancelled async handler's does. With an observer, a tracer
or consume interceptors such a handler runs in a Task that awaits what it returned.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mmate_fast import _backoff, errors
from mmate_fast._ext import COMPILED, load
from mmate_fast.contracts import TypeRegistry, from_envelope
from mmate_fast.contracts._plan import _PLANS, plan_for
from mmate_fast.messaging import observer as _obs
from mmate_fast.messaging import topology
from mmate_fast.messaging._channels import close_quietly
from mmate_fast.messaging.dispatcher import Dispatcher, HandlerSpec, MessageContext
from mmate_fast.messaging.pipeline import ConsumeContext, Pipeline

_frames = load("frames")
_decode_envelope = load("envelope").decode_envelope
_dispatch = load("dispatch")
#: the compiled per-delivery step is the consumer callback (the twin would only add a call)
_STEP = COMPILED.get("dispatch", False)

log = logging.getLogger("mmate_fast.subscriber")
_perf = time.perf_counter

#: called with (handler result, message, context) when a handler returns something (replies)
ResultHook = Callable[[Any, Any, MessageContext], Any]
#: declares a subscription's queue (and its bindings) again before its consumer is restarted
Redeclare = Callable[[], Awaitable[None]]


@dataclass
class SubscriptionStats:
    """Counters of one subscription."""

    received: int = 0
    acked: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    handler_errors: int = 0
    #: settles the transport dropped as stale (a delivery from before a reconnect; redelivered)
    stale_settles: int = 0
    #: times the consumer was started again after the broker cancelled it or its channel closed
    consumer_restarts: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class Failure:
    """A delivery that could not be processed, handed to the subscription's failure handler."""

    __slots__ = ("channel", "delivery", "envelope", "exception", "message", "reason", "subscription",
                 "text")

    def __init__(self, subscription: Subscription, delivery: Any, reason: str, text: str,
                 exception: BaseException | None = None, envelope: Any = None, message: Any = None,
                 channel: Any = None) -> None:
        self.subscription = subscription
        self.delivery = delivery
        #: bad-properties, too-large, bad-signature, expired, replayed, bad-ciphertext, not-encrypted,
        #: not-json, not-an-object, bad-field, missing-type, unknown-type, contract-error,
        #: handler-error, ...
        self.reason = reason
        self.text = text
        self.exception = exception
        self.envelope = envelope
        self.message = message
        #: the channel the delivery came on: settle it there (the subscription may have moved on
        #: to a new channel since; the old one's deliveries were requeued with it)
        self.channel = channel if channel is not None else subscription.channel


#: decides what happens to a failed delivery; must settle it (e.g. via ``subscription.give_up``)
FailureHandler = Callable[[Failure], Awaitable[None]]
#: a handler raised for ``message``: return True if that was answered (e.g. an ErrorReply was sent)
ErrorHook = Callable[[BaseException, Any, MessageContext], Awaitable[bool]]

_Pending = tuple[Any, Any, Any, Any, tuple[HandlerSpec, ...]]  # (channel, delivery, env, msg, handlers)

#: reasons whose one log line comes from elsewhere: handler errors (``_handler_failed``), too-large
#: deliveries (the connection, when it dropped the body)
_LOGGED_ELSEWHERE = frozenset({"handler-error", "too-large"})
#: the attribute :func:`settles_later` sets on a handler function
SETTLES_LATER = "__mmate_settles_later__"
#: how a handler tuple runs: inline and settled at once, inline and settled later, in a Task
_PLAIN, _LATER, _ASYNC = 0, 1, 2
#: prefetch=0 ("no fixed limit") is sent as basic.qos of this many messages per concurrent handler:
#: enough to keep the handlers busy, while the deliveries waiting locally stay bounded
UNLIMITED_PREFETCH_FACTOR = 10


def settles_later(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a plain (not ``async``) handler as settling later: it returns None (settle now, as a
    plain handler) or an awaitable, and its delivery is acked when that is done (nack/DLQ/retry as a
    raising handler if it fails; requeued if cancelled), from a done-callback: no Task per delivery.
    What the awaitable gives is not a reply. Returns ``fn`` (a function: its ``__mmate_settles_later__``
    is set; a method marked in its class keeps it when bound)."""
    setattr(fn, SETTLES_LATER, True)
    return fn


def _settles_later(spec: HandlerSpec) -> bool:
    return bool(getattr(spec.fn, SETTLES_LATER, False)) and not spec.is_async


def _mode(handlers: tuple[HandlerSpec, ...]) -> int:
    if any(spec.is_async for spec in handlers):
        return _ASYNC
    return _LATER if any(_settles_later(spec) for spec in handlers) else _PLAIN


def check_consumer_limits(prefetch: int, concurrency: int | None) -> None:
    """Refuse what basic.qos cannot carry (prefetch 0-65535; 0 = as the handlers need, see
    :func:`effective_prefetch`) and a concurrency below 1, with InvalidArgumentError, before anything
    is sent."""
    if type(prefetch) is not int or not 0 <= prefetch <= 65535:
        raise errors.InvalidArgumentError(
            f"prefetch must be a whole number from 0 (as the handlers need) to 65535, got {prefetch!r}",
            "prefetch")
    if concurrency is not None and (type(concurrency) is not int or concurrency < 1):
        raise errors.InvalidArgumentError(
            f"concurrency must be a whole number of at least 1 (or None: as prefetch), got {concurrency!r}",
            "concurrency")


def effective_prefetch(prefetch: int, concurrency: int) -> int:
    """The basic.qos prefetch a subscription uses: ``prefetch``, or for 0 ("no fixed limit")
    ``UNLIMITED_PREFETCH_FACTOR * concurrency`` (at most 65535). A broker without a limit would push
    a whole queue into this process, where it waits for the async handlers in the local backlog:
    bounded this way, the rest stays in the broker until the handlers catch up."""
    if prefetch:
        return prefetch
    return min(65535, UNLIMITED_PREFETCH_FACTOR * max(1, concurrency))


class Subscription:
    """One consumer on one queue. Create with ``await Subscriber.subscribe(...)``."""

    def __init__(self, subscriber: Subscriber, queue: str, channel: Any, *, concurrency: int,
                 dead_letter: bool, failure_handler: FailureHandler | None = None, prefetch: int = 0,
                 exclusive: bool = False, redeclare: Redeclare | None = None,
                 registry: TypeRegistry | None = None) -> None:
        self._sub = subscriber
        self.queue = queue
        #: the channel consumed on (replaced when a channel-level error closed it)
        self.channel = channel
        self.prefetch = prefetch
        self.exclusive = exclusive
        self.concurrency = max(1, concurrency)
        self.dead_letter = dead_letter
        self.dead_letter_queue = topology.dead_letter_queue(queue) if dead_letter else None
        #: what to do with failed deliveries (default: :meth:`give_up`)
        self.failure_handler = failure_handler
        self.consumer_tag = ""
        self.stats = SubscriptionStats()
        self._table_lookup = subscriber.dispatcher.table.lookup
        #: type name -> class for decoding this queue's deliveries (default: the dispatcher's)
        self._registry = registry if registry is not None else subscriber.dispatcher.registry
        self._pipeline = subscriber.pipeline
        #: handler tuple -> _PLAIN / _LATER / _ASYNC (the dispatch table caches the tuples)
        self._modes: dict[tuple[HandlerSpec, ...], int] = {}
        #: the settle-later handlers among them
        self._later_specs: set[HandlerSpec] = set()
        self._in_flight = 0
        self._backlog: deque[_Pending] = deque()
        #: Tasks made here (failure handling, async handlers, settle-later coroutines), kept until done
        self._tasks: set[asyncio.Future[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._redeclare = redeclare
        self._restarting: asyncio.Task[None] | None = None
        #: the consumer callback: the compiled per-delivery step (on_delivery for what it declines)
        self._deliver: Callable[[Any], None] = self.on_delivery
        table = subscriber.dispatcher.table
        if _STEP and isinstance(table, _dispatch.DispatchTable):
            self._deliver = _dispatch.DeliveryStep(self, table, self._registry._by_name, _decode_envelope,
                                                   _PLANS, plan_for)

    @property
    def subscriber(self) -> Subscriber:
        """The Subscriber (and so ``.connection``) this subscription belongs to."""
        return self._sub

    @property
    def in_flight(self) -> int:
        """Async handler calls running now, and settle-later deliveries waiting for their awaitable
        (plain handlers run inline: never in flight between turns)."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Deliveries taken from the broker that wait for a free handler slot (``concurrency``)."""
        return len(self._backlog)

    # ------------------------------------------------------------------ delivery path
    def on_delivery(self, delivery: Any) -> None:
        """Channel callback (plain function: runs inline in the frame reader loop)."""
        stats = self.stats
        stats.received += 1
        ch = self.channel
        if delivery.undecodable is not None:  # properties or routing key the reader could not decode
            if delivery.oversized:  # body over max_message_size, dropped as it came
                self._fail(ch, delivery, "too-large", delivery.undecodable, final=True)
            else:
                self._fail(ch, delivery, "bad-properties", f"undecodable delivery: {delivery.undecodable}",
                           final=True)
            return
        body = delivery.body
        if self._pipeline.has_wire:  # signatures, decryption: on the raw delivery, before any decoding
            try:
                body = self._pipeline.verify(delivery, self.queue)
            except Exception as exc:
                reason = exc.reason if isinstance(exc, errors.InterceptorError) else "interceptor-error"
                self._fail(ch, delivery, reason, str(exc) or type(exc).__name__, exc, final=True)
                return
        try:
            env = _decode_envelope(body)
        except errors.EnvelopeError as exc:
            self._fail(ch, delivery, exc.reason, str(exc), exc)
            return
        handlers = self._table_lookup(env.type)
        if not handlers:
            self._fail(ch, delivery, "unknown-type",
                       f"no handler for message type {env.type!r} on queue {self.queue!r}", None, env)
            return
        self._on_envelope(ch, delivery, env, handlers)

    def _on_envelope(self, ch: Any, delivery: Any, env: Any, handlers: tuple[HandlerSpec, ...]) -> None:
        """The rest of ``on_delivery`` once the envelope decoded and has ``handlers`` (counted in
        ``stats.received`` already). The compiled per-delivery step hands over here the deliveries
        it decoded but whose handlers it does not run itself (async, with a context, settle-later
        ones without a free slot or taking a context without a context-free entry)."""
        stats = self.stats
        try:
            msg = from_envelope(env, self._registry)
        except (errors.ContractError, errors.EnvelopeError) as exc:
            self._fail(ch, delivery, "contract-error", str(exc), exc, env)
            return
        if self._stopping:
            self._settle(ch.basic_nack, delivery.delivery_tag, False, True)
            return
        mode = self._modes.get(handlers)
        if mode is None:  # once per handler tuple (the dispatch table caches the tuples)
            mode = self._modes[handlers] = _mode(handlers)
            self._later_specs.update(spec for spec in handlers if _settles_later(spec))
        if mode or self._pipeline.has_consume:
            if self._in_flight >= self.concurrency:
                self._backlog.append((ch, delivery, env, msg, handlers))
            else:
                self._begin(ch, delivery, env, msg, handlers)
            return
        # every handler is plain and nothing intercepts: run inline, no Task
        ctx = None
        observer = self._sub.observer
        t0 = _perf() if observer is not None else 0.0
        tracer = self._sub.tracer
        token = None
        if tracer is not None:
            try:  # inlined _obs.start_handle: this runs for every delivery
                token = tracer.start_handle(delivery, env, self.queue)
            except Exception:
                _obs.tracer_failed(tracer)
        try:
            for spec in handlers:
                if spec.wants_context:
                    if ctx is None:
                        ctx = MessageContext(delivery, env, msg, self.queue, self._sub.services)
                    result = spec.fn(msg, ctx)
                else:
                    result = spec.fn(msg)
                if result is not None:
                    self._on_result(result, msg, ctx, delivery, env)
        except Exception as exc:
            if token is not None:
                _obs.end_handle(tracer, token, exc)
            if observer is not None:
                _observe(observer, env.type, _perf() - t0, exc)
            self._spawn(self._handler_failed(ch, delivery, env, msg, ctx, exc))
            return
        if token is not None:
            _obs.end_handle(tracer, token, None)
        if observer is not None:
            _observe(observer, env.type, _perf() - t0, None)
        if ch.basic_ack(delivery.delivery_tag) is False:  # dropped as stale by a recovering channel
            stats.stale_settles += 1
        else:
            stats.acked += 1

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_result(self, result: Any, msg: Any, ctx: MessageContext | None, delivery: Any, env: Any) -> None:
        hook = self._sub.result_hook
        if hook is None:
            return
        if ctx is None:
            ctx = MessageContext(delivery, env, msg, self.queue, self._sub.services)
        outcome = hook(result, msg, ctx)
        if outcome is not None and asyncio.iscoroutine(outcome):  # None (the usual) skips the ABC check
            self._spawn(outcome)

    def _begin(self, ch: Any, delivery: Any, env: Any, msg: Any, handlers: tuple[HandlerSpec, ...]) -> None:
        """Start a delivery that needs a slot: settle-later handlers inline when nothing observes or
        intercepts them, anything else in a Task."""
        sub = self._sub
        if (self._modes.get(handlers) == _LATER and not self._pipeline.has_consume and sub.observer is None
                and sub.tracer is None):
            self._run_later(ch, delivery, env, msg, handlers)
        else:
            self._start(ch, delivery, env, msg, handlers)

    def _start(self, ch: Any, delivery: Any, env: Any, msg: Any, handlers: tuple[HandlerSpec, ...]) -> None:
        self._in_flight += 1
        self._idle.clear()
        self._spawn(self._run(ch, delivery, env, msg, handlers))

    def _run_later(self, ch: Any, delivery: Any, env: Any, msg: Any,
                   handlers: tuple[HandlerSpec, ...]) -> None:
        """Run the handlers inline; settle now if no settle-later handler returned an awaitable, else
        when the awaitable is done (several: when all are)."""
        ctx = None
        later: list[Any] = []
        try:
            for spec in handlers:
                if spec.wants_context:
                    if ctx is None:
                        ctx = MessageContext(delivery, env, msg, self.queue, self._sub.services)
                    result = spec.fn(msg, ctx)
                else:
                    result = spec.fn(msg)
                if result is not None:
                    if spec in self._later_specs:
                        later.append(result)
                    else:
                        self._on_result(result, msg, ctx, delivery, env)
        except Exception as exc:
            for awaitable in later:  # not awaited: a coroutine is closed (no "never awaited" warning)
                if asyncio.iscoroutine(awaitable):
                    awaitable.close()
            self._spawn(self._handler_failed(ch, delivery, env, msg, ctx, exc))
            return
        if not later:
            if self._settle(ch.basic_ack, delivery.delivery_tag):
                self.stats.acked += 1
            return
        fut = later[0] if len(later) == 1 else asyncio.gather(*later)
        if not isinstance(fut, asyncio.Future):  # a coroutine (or another awaitable): in a Task, kept
            fut = asyncio.ensure_future(fut)
            self._tasks.add(fut)
            fut.add_done_callback(self._tasks.discard)
        self._in_flight += 1
        self._idle.clear()
        fut.add_done_callback(functools.partial(self._settled, ch, delivery, env, msg, ctx))

    def _settled(self, ch: Any, delivery: Any, env: Any, msg: Any, ctx: MessageContext | None,
                 fut: asyncio.Future[Any]) -> None:
        """A settle-later delivery's awaitable is done: ack it, or fail it as a raising handler (a
        cancelled one is requeued); then the next delivery waiting for a slot starts."""
        try:
            if fut.cancelled():
                self._settle(ch.basic_nack, delivery.delivery_tag, False, True)
            else:
                exc = fut.exception()
                if exc is None:
                    if self._settle(ch.basic_ack, delivery.delivery_tag):
                        self.stats.acked += 1
                else:
                    self._spawn(self._handler_failed(ch, delivery, env, msg, ctx, exc))
        finally:
            self._in_flight -= 1
            self._next()

    def _next(self) -> None:
        """A slot was freed: start what waits for one (in order), or mark the subscription idle."""
        backlog = self._backlog
        while backlog and not self._stopping and self._in_flight < self.concurrency:
            self._begin(*backlog.popleft())
        if self._in_flight == 0 and not backlog:
            self._idle.set()

    async def _run(self, ch: Any, delivery: Any, env: Any, msg: Any,
                   handlers: tuple[HandlerSpec, ...]) -> None:
        ctx = MessageContext(delivery, env, msg, self.queue, self._sub.services)
        pipeline = self._pipeline
        observer = self._sub.observer
        t0 = _perf() if observer is not None else 0.0
        tracer = self._sub.tracer
        token = _obs.start_handle(tracer, delivery, env, self.queue) if tracer is not None else None
        try:
            for spec in handlers:
                if pipeline.has_consume:
                    cctx = ConsumeContext(delivery, env, msg, self.queue, spec, ctx)
                    result = await pipeline.consume(cctx, _handler_call(spec, msg, ctx))
                    if cctx.skipped:
                        continue
                else:
                    result = spec.fn(msg, ctx) if spec.wants_context else spec.fn(msg)
                    if spec.is_async:
                        result = await result
                    elif result is not None and _settles_later(spec):
                        await result
                        result = None
                if result is not None:
                    hook = self._sub.result_hook
                    if hook is not None:
                        outcome = hook(result, msg, ctx)
                        if asyncio.iscoroutine(outcome):
                            await outcome
        except asyncio.CancelledError as exc:
            if token is not None:
                _obs.end_handle(tracer, token, exc)
            self._settle(ch.basic_nack, delivery.delivery_tag, False, True)
            raise
        except Exception as exc:
            if token is not None:
                _obs.end_handle(tracer, token, exc)
            if observer is not None:
                _observe(observer, env.type, _perf() - t0, exc)
            await self._handler_failed(ch, delivery, env, msg, ctx, exc)
        else:
            if token is not None:
                _obs.end_handle(tracer, token, None)
            if observer is not None:
                _observe(observer, env.type, _perf() - t0, None)
            if self._settle(ch.basic_ack, delivery.delivery_tag):
                self.stats.acked += 1
        finally:
            self._in_flight -= 1
            self._next()

    def _settle(self, settle: Callable[..., Any], *args: Any) -> bool:
        """Ack/nack/reject; False when that did not happen: dropped as stale by a recovering channel
        (counted) or the channel is closed (the broker requeues the delivery either way)."""
        try:
            if settle(*args) is False:
                self.stats.stale_settles += 1
                return False
        except errors.MmateError as exc:
            log.warning("could not settle delivery on %r: %s", self.queue, exc)
            return False
        return True

    # ------------------------------------------------------------------ failures
    async def _handler_failed(self, ch: Any, delivery: Any, env: Any, msg: Any, ctx: MessageContext | None,
                              exc: BaseException) -> None:
        self.stats.handler_errors += 1
        # the traceback only at DEBUG: a poison stream must not flood the logs
        log.error("handler for %s (id %s) on queue %r failed: %r", env.type, env.id, self.queue, exc,
                  exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
        hook = self._sub.error_hook
        if hook is not None:
            if ctx is None:
                ctx = MessageContext(delivery, env, msg, self.queue, self._sub.services)
            try:
                answered = await hook(exc, msg, ctx)
            except Exception as hook_exc:
                log.error("error hook failed: %r", hook_exc)
                answered = False
            if answered:
                if self._settle(ch.basic_ack, delivery.delivery_tag):
                    self.stats.acked += 1
                return
        reason = getattr(exc, "reason", None) if isinstance(exc, errors.MmateError) else None
        self._fail(ch, delivery, reason or "handler-error", f"{type(exc).__name__}: {exc}", exc, env, msg)

    def _fail(self, ch: Any, delivery: Any, reason: str, text: str, exc: BaseException | None = None,
              env: Any = None, msg: Any = None, *, final: bool = False) -> None:
        """A delivery failed: to the failure handler, else given up. ``final``: it never passed the
        wire stage (bad properties, too large, refused by a signature or decryption): no retry can
        help, so it is given up at once; otherwise the wire stage releases it (a retry may come)."""
        self.stats.reasons[reason] += 1
        if reason not in _LOGGED_ELSEWHERE:
            log.warning("rejecting delivery %d on queue %r (%s): %s", delivery.delivery_tag, self.queue,
                        reason, text)
        failure = Failure(self, delivery, reason, text, exc, env, msg, ch)
        if not final and self._pipeline.has_wire:
            try:
                self._pipeline.release(delivery, self.queue)
            except Exception as release_exc:
                log.error("releasing delivery %d on %r failed: %r", delivery.delivery_tag, self.queue,
                          release_exc)
        if self.failure_handler is not None and not final:
            self._spawn(self._run_failure_handler(failure))
        elif self._dead_letterer() is not None:
            self._spawn(self.give_up(failure))
        else:
            self.reject(failure)

    async def _run_failure_handler(self, failure: Failure) -> None:
        assert self.failure_handler is not None
        try:
            await self.failure_handler(failure)
        except Exception as exc:
            log.error("failure handler failed for delivery %d on %r (%r); giving up on the message",
                      failure.delivery.delivery_tag, self.queue, exc)
            await self.give_up(failure)

    def ack(self, failure: Failure, *, dead_lettered: bool = False) -> bool:
        """Ack a failed delivery a failure handler has dealt with (e.g. a retry copy is stored), on the
        channel it came on; counts it in ``stats.acked`` (``stats.dead_lettered`` when its copy is in
        its dead-letter queue; ``stale_settles`` if dropped). False if not acked: then the broker
        redelivers it."""
        if not self._settle(failure.channel.basic_ack, failure.delivery.delivery_tag):
            return False
        if dead_lettered:
            self.stats.dead_lettered += 1
        else:
            self.stats.acked += 1
        return True

    def reject(self, failure: Failure, *, dead_lettered: bool = False) -> bool:
        """Reject a failed delivery without requeue (counted in ``stats.rejected``; in
        ``stats.dead_lettered`` when a record of it is in its DLQ): the broker drops it, or
        dead-letters it if its queue has a dead-letter exchange."""
        if self._settle(failure.channel.basic_reject, failure.delivery.delivery_tag, False):
            if dead_lettered:
                self.stats.dead_lettered += 1
            else:
                self.stats.rejected += 1
            return True
        return False

    def _dead_letterer(self) -> FailureHandler | None:
        """Where given-up deliveries go, if dead-lettering is on for this subscription."""
        if self.dead_letter_queue is None or self._sub.dead_letter_target is None:
            return None
        return self._sub.dead_letterer

    async def give_up(self, failure: Failure) -> None:
        """The end of a failed delivery: the subscriber's dead-letterer (the Client's: to
        ``dlq.{queue}`` with the reason) when dead-lettering is on, else reject without requeue. A
        dead-letterer that raises has the delivery rejected (counted, logged)."""
        dead_letterer = self._dead_letterer()
        if dead_letterer is None:
            self.reject(failure)
            return
        try:
            await dead_letterer(failure)
        except Exception as exc:
            log.error("dead-lettering delivery %d on %r failed (%r); rejecting it instead",
                      failure.delivery.delivery_tag, self.queue, exc)
            self.reject(failure)

    async def republish(self, delivery: Any, exchange: str, routing_key: str,
                        extra_headers: dict[str, Any], properties: dict[str, Any] | None = None, *,
                        mandatory: bool = False) -> None:
        """Publish a copy of ``delivery`` (same body and properties, ``extra_headers`` added) with a
        broker confirm. The caller acks the original afterwards, so nothing is lost in between.
        ``mandatory``: an unroutable copy raises PublishReturnedError instead of being dropped."""
        target = self._sub.dead_letter_target
        if target is None:
            raise errors.MmateError("this subscriber has no confirm channel to republish on")
        props = delivery.properties
        headers = dict(props.headers or {})
        headers.update(extra_headers)
        fields = {**props.to_dict(), "headers": headers, **(properties or {})}
        await target.publish(delivery.body, exchange, routing_key, _frames.BasicProperties(**fields),
                             mandatory=mandatory)

    # ------------------------------------------------------------------ consumer (re)start
    async def _consume(self, timeout: float | None = None) -> None:
        """Start the consumer on the current channel. The tag is ours, so a cancel that arrives right
        after consume-ok is recognised."""
        tag = f"mmate.{uuid.uuid4().hex}"
        self.consumer_tag = tag
        try:
            await self.channel.basic_consume(self.queue, self._deliver, consumer_tag=tag,
                                             exclusive=self.exclusive, on_cancel=self._on_cancel,
                                             timeout=timeout)
        except BaseException:
            if self.consumer_tag == tag:
                self.consumer_tag = ""
            raise

    def _on_cancel(self, consumer_tag: str) -> None:
        """The broker cancelled the consumer (queue deleted, failover) or its channel closed under it:
        restart it in the background."""
        if consumer_tag != self.consumer_tag or self._stopping:
            return
        self.consumer_tag = ""
        log.warning("consumer on queue %r was cancelled (queue deleted or failed over, or its channel "
                    "closed); restarting it", self.queue)
        if self._restarting is None or self._restarting.done():
            self._restarting = asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        attempt = 0
        while not self._stopping:
            attempt += 1
            await asyncio.sleep(self._sub.restart_delay(attempt))
            if self._stopping:
                return
            if self._sub.connection.is_closed:
                log.warning("not restarting the consumer on %r: its connection is closed", self.queue)
                return
            try:
                await self._consume_again()
            except Exception as exc:
                log.warning("restarting the consumer on %r failed (attempt %d): %s; trying again",
                            self.queue, attempt, exc)
                continue
            self.stats.consumer_restarts += 1
            log.warning("consumer on queue %r restarted (attempt %d)", self.queue, attempt)
            return

    async def _consume_again(self) -> None:
        if self._redeclare is not None:
            await self._redeclare()
        if not self.channel.is_open:
            old = self.channel
            self.channel = await self._sub._open_channel(self.prefetch)
            # deliveries still waiting for a handler came on the old channel: requeued with it
            self._backlog = deque(p for p in self._backlog if p[0] is not old)
            if self._in_flight == 0 and not self._backlog:
                self._idle.set()
            await close_quietly(old)
        await self._consume()

    # ------------------------------------------------------------------ lifecycle
    async def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming, let in-flight handlers finish (bounded), requeue what never started.

        Failure handling in flight (a dead-letter copy being published, a retry being scheduled) is part
        of the work that finishes: it gets what is left of ``timeout`` too, so a failed delivery ends in
        its DLQ rather than going back to its queue (to be handled again) because the consumer stopped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._stopping = True
        restarting = self._restarting
        if restarting is not None and not restarting.done():
            restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await restarting
        if self.consumer_tag and self.channel.is_open:
            try:
                await self.channel.basic_cancel(self.consumer_tag, timeout=timeout)
            except errors.MmateError as exc:
                log.warning("basic.cancel on %r failed: %s", self.queue, exc)
        while self._backlog:
            ch, delivery = self._backlog.popleft()[:2]
            self._settle(ch.basic_nack, delivery.delivery_tag, False, True)
        if self._in_flight:
            try:
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
            except TimeoutError:
                log.warning("%d handler(s) on %r still running after %s s; cancelling them",
                            self._in_flight, self.queue, timeout)
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            done, late = await asyncio.wait(pending, timeout=max(0.1, deadline - loop.time()))
            for task in done:  # retrieved here: their errors were logged where they happened
                if not task.cancelled():
                    task.exception()
            if late:
                log.warning("%d failure handler(s) on %r still running after %s s; cancelling them",
                            len(late), self.queue, timeout)
            for task in late:
                task.cancel()


class Subscriber:
    """Starts and stops Subscriptions on a connection; every subscription has its own channel."""

    def __init__(self, connection: Any, dispatcher: Dispatcher, *, services: Any = None,
                 result_hook: ResultHook | None = None, error_hook: ErrorHook | None = None,
                 dead_letter_target: Any = None, pipeline: Pipeline | None = None,
                 restart_delay: Callable[[int], float] | None = None,
                 dead_letterer: FailureHandler | None = None) -> None:
        self.connection = connection
        self.dispatcher = dispatcher
        self.services = services
        self.result_hook = result_hook
        self.error_hook = error_hook
        #: interceptors run around every handler call (shared with the publisher by the Client)
        self.pipeline = pipeline if pipeline is not None else Pipeline()
        #: a confirm-mode channel/pool that failed messages are republished on (to a DLQ, a retry queue)
        self.dead_letter_target = dead_letter_target
        #: the end of a failed delivery when dead-lettering is on (``Subscription.give_up``); the Client
        #: wires the reliability layer's ``DeadLettering``; without one, failed deliveries are rejected
        self.dead_letterer = dead_letterer
        #: a MessageObserver told how long the handlers of each delivery ran (mmate_fast.messaging.observer)
        self.observer: Any = None
        #: a MessageTracer called around the handlers of each delivery (mmate_fast.messaging.observer)
        self.tracer: Any = None
        #: seconds before restart attempt n (1, 2, ...) of a cancelled consumer: the recovery backoff
        self.restart_delay = restart_delay if restart_delay is not None else _backoff.RECOVERY.delay
        self.subscriptions: list[Subscription] = []

    async def _open_channel(self, prefetch: int, timeout: float | None = None) -> Any:
        channel = await self.connection.channel(timeout=timeout)
        if prefetch:
            try:
                await channel.basic_qos(prefetch_count=prefetch, timeout=timeout)
            except BaseException:
                await close_quietly(channel)
                raise
        return channel

    async def subscribe(self, queue: str, *, prefetch: int = 10, concurrency: int | None = None,
                        dead_letter: bool = True, exclusive: bool = False,
                        failure_handler: FailureHandler | None = None,
                        timeout: float | None = None, redeclare: Redeclare | None = None,
                        registry: TypeRegistry | None = None) -> Subscription:
        """Consume ``queue`` (which must exist) with ``prefetch`` unacked messages at most and
        ``concurrency`` async handlers at once (default: prefetch, or 100 with prefetch 0). Prefetch 0
        is bounded too: ``UNLIMITED_PREFETCH_FACTOR * concurrency`` (see :func:`effective_prefetch`).

        Failed messages go to the ``failure_handler``, then to the subscriber's dead-letterer
        (``dlq.{queue}``) unless ``dead_letter=False``. ``redeclare`` declares the queue and its
        bindings again before a cancelled consumer is restarted (without it, the queue is consumed
        again once it exists). ``registry``: decode this queue's deliveries with it instead of the
        dispatcher's (a pattern that consumes its own message types, e.g. StageFlow's stage queues,
        whatever classes the application registered under those names).
        """
        check_consumer_limits(prefetch, concurrency)
        concurrency = concurrency or prefetch or 100
        prefetch = effective_prefetch(prefetch, concurrency)
        channel = await self._open_channel(prefetch, timeout)
        sub = Subscription(self, queue, channel, concurrency=concurrency,
                           dead_letter=dead_letter, failure_handler=failure_handler, prefetch=prefetch,
                           exclusive=exclusive, redeclare=redeclare, registry=registry)
        try:
            await sub._consume(timeout)
        except BaseException:
            await close_quietly(channel)  # refused (e.g. 404: no such queue): leave nothing behind
            raise
        self.subscriptions.append(sub)
        return sub

    async def unsubscribe(self, sub: Subscription, timeout: float = 10.0) -> None:
        await sub.stop(timeout)
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
        await close_quietly(sub.channel)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop every subscription, draining in-flight handlers within ``timeout``."""
        subs = list(self.subscriptions)
        await asyncio.gather(*(s.stop(timeout) for s in subs), return_exceptions=True)
        for s in subs:
            await close_quietly(s.channel)
        self.subscriptions.clear()


def _observe(observer: Any, type_name: str, seconds: float, error: BaseException | None) -> None:
    try:
        observer.handled(type_name, seconds, error)
    except Exception:
        log.exception("handler observer %r failed (ignored)", observer)


def _handler_call(spec: HandlerSpec, msg: Any, ctx: MessageContext) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        result = spec.fn(msg, ctx) if spec.wants_context else spec.fn(msg)
        if spec.is_async:
            result = await result
        elif result is not None and _settles_later(spec):
            await result
            result = None
        return result

    return call


__all__ = ["SETTLES_LATER", "UNLIMITED_PREFETCH_FACTOR", "ErrorHook", "Failure", "FailureHandler",
           "Redeclare", "Subscriber", "Subscription", "SubscriptionStats", "check_consumer_limits",
           "effective_prefetch", "settles_later"]
