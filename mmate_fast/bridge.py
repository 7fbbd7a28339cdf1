"""Request/reply bridge, wire-compatible with mmate-go's ``bridge.SyncAsyncBridge`` (wire spec §6.1).

``reply = await client.request(GetOrderQuery(order_id="1"), timeout=5)`` publishes the request with
Mmate's routing (commands ``mmate.commands`` / ``cmd.{targetService}.{Type}``, queries
``mmate.queries`` / ``qry.{Type}``) and waits for the typed reply.

How it matches Go:

* one reply queue per bridge, ``bridge.reply.{8 hex}``, declared on first use non-durable,
  exclusive, auto-delete, without arguments, consumed (manual ack, exclusive consumer) on the
  bridge's own channel;
* beyond Go: the reply queue is also bound to ``mmate.messages`` with its own name as routing key,
  where mmate-go's ``RequestReplyServer`` sends its replies (wire spec §6.3; a Go bridge never gets
  them and times out);
* the reply address travels in the request **payload** ``replyTo`` (where Go reads it; also at
  envelope level and in ``x-reply-to`` for .NET-style responders), the correlation id is a fresh
  UUID v4 per request in envelope ``correlationId`` and the ``x-correlation-id``/``correlation-id``
  headers;
* a reply is matched by its envelope ``correlationId`` (fallbacks: AMQP ``correlation_id``, then the
  ``x-correlation-id``/``correlation-id`` headers).

Better than Go: no cap of 1000 pending requests and no lock (a dict of futures, all on the event
loop); a reply in any of Go's error shapes (§6.4), or a typed reply with ``success: false`` and
error fields, raises :class:`~mmate_fast.errors.RemoteError`;
a timeout raises :class:`~mmate_fast.errors.RequestTimeout` and removes the pending entry at once
(no sweeper), so a reply that arrives later is acked, dropped and counted in
``stats.late_replies``.
"""
from __future__ import annotations

import asyncio
import collections.abc as cabc
import functools
import logging
import types
import typing
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from mmate_fast import _checks, errors
from mmate_fast._ext import COMPILED, load
from mmate_fast.contracts import (
    ErrorReply,
    GenericMessage,
    MessageKind,
    TypeRegistry,
    contract_plan,
    default_registry,
    from_envelope,
    kind_of,
    message_type,
    reply_type_of,
    to_payload,
)
from mmate_fast.contracts._plan import _PLANS, plan_for
from mmate_fast.messaging import topology
from mmate_fast.messaging.outgoing import Outgoing
from mmate_fast.messaging.publisher import Publisher, require_target_service
from mmate_fast.reliability.retry import ExponentialBackoff, RetryPolicy

_env = load("envelope")
_decode_envelope = _env.decode_envelope
_new_id = _env.new_id
_replystep = load("replystep")
#: the compiled reply step is the reply consumer's callback (the twin would only add a call)
_STEP = COMPILED.get("replystep", False)
#: ``asyncio.current_task(loop)`` with the loop given is one lookup in the loop's current-task table:
#: it tells that the bridge's last loop still runs its requests without asyncio.get_running_loop(),
#: a getpid() syscall per call on Python < 3.12 (its fork check)
_task_of = asyncio.current_task

log = logging.getLogger("mmate_fast.bridge")

#: prefix of the reply queue names (Go: ``bridge.reply.`` + first 8 chars of a UUID v4)
REPLY_QUEUE_PREFIX = "bridge.reply."
#: unacked replies the reply consumer may hold (Go uses 10; replies are settled inline, so more is cheap)
DEFAULT_PREFETCH = 100
DEFAULT_TIMEOUT = 30.0
_FOREVER = 2**31  # resubscribe attempts: until it works or the bridge closes
_PLANS_MAX = 1024  # request plans cached per bridge (by class and persistence)


class _RequestExpired(Exception):
    """Set on a request's reply future by its timer (turned into RequestTimeout by ``request``)."""


#: buckets per second of the request deadlines (a RequestTimeout comes at most 1/this s late)
_DEADLINE_BUCKETS_PER_S = 20.0


class _Deadlines:
    """The deadlines of a bridge's waiting requests, in buckets of 50 ms: one loop timer per bucket
    instead of one per request (a loop timer and its cancel cost ~2 µs per request under uvloop,
    a set add/discard ~0.2). A bucket's timer expires every request still in it."""

    __slots__ = ("_buckets", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._buckets: dict[int, set[asyncio.Future[Any]]] = {}

    def add(self, deadline: float, fut: asyncio.Future[Any]) -> set[asyncio.Future[Any]]:
        """Expire ``fut`` with _RequestExpired at the end of ``deadline``'s bucket unless it is done
        by then; returns the bucket (``discard`` the future from it once it is done)."""
        key = int(deadline * _DEADLINE_BUCKETS_PER_S) + 1
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
            self.loop.call_at(key / _DEADLINE_BUCKETS_PER_S, self._expire, key)
        bucket.add(fut)
        return bucket

    def _expire(self, key: int) -> None:
        for fut in self._buckets.pop(key, ()):
            if not fut.done():
                fut.set_exception(_RequestExpired())


def new_reply_queue_name() -> str:
    """``bridge.reply.{first 8 hex chars of a UUID v4}``, as Go names its bridge reply queue."""
    return REPLY_QUEUE_PREFIX + uuid.uuid4().hex[:8]


@dataclass
class BridgeStats:
    """Counters of one bridge.

    ``sent``: requests published; ``replied``: replies matched to a waiting request;
    ``timeouts``: requests that raised RequestTimeout; ``late_replies``: replies for an unknown or
    expired correlation id (acked and dropped); ``errors``: replies that raised RemoteError;
    ``malformed``: reply bodies that were not an envelope / did not fit the registered class;
    ``refused``: replies the wire stage refused before decoding (bad or missing signature, expired,
    replayed, not decryptable), dropped without failing their request;
    ``cancellations``: times the broker cancelled the reply consumer (reply queue deleted, the
    bridge's channel closed); ``resubscribes``: times the bridge re-declared and re-consumed its reply
    queue after that.
    """

    sent: int = 0
    replied: int = 0
    timeouts: int = 0
    late_replies: int = 0
    errors: int = 0
    malformed: int = 0
    refused: int = 0
    cancellations: int = 0
    resubscribes: int = 0


# ---------------------------------------------------------------------------------- reply decoding
def reply_correlation_id(env: Any, properties: Any = None) -> str | None:
    """The correlation id of a received reply: envelope ``correlationId``, then the AMQP
    ``correlation_id`` property, then the ``x-correlation-id``/``correlation-id`` headers."""
    if env.correlation_id:
        return str(env.correlation_id)
    if properties is not None:
        if properties.correlation_id:
            return str(properties.correlation_id)
        amqp_headers = properties.headers or {}
    else:
        amqp_headers = {}
    for headers in (env.headers or {}, amqp_headers):
        value = headers.get("x-correlation-id") or headers.get("correlation-id")
        if value:
            return str(value)
    return None


def decode_reply(body: bytes, properties: Any = None,
                 registry: TypeRegistry = default_registry) -> tuple[str | None, Any]:
    """The bridge's reply path: body (+ AMQP properties) -> (correlation id, typed reply).

    The reply is an instance of the class registered for its envelope ``type`` (an unregistered
    type gives a GenericMessage). Raises EnvelopeError / ContractError for a malformed body.
    """
    env = _decode_envelope(body)
    return reply_correlation_id(env, properties), from_envelope(env, registry)


def error_of(reply: Any, payload: Any = None) -> tuple[str, str] | None:
    """``(code, message)`` when ``reply`` is an error reply in one of Go's shapes (§6.4), else None.

    Error replies: a contracts ErrorReply; any reply with ``success`` false and an error code or
    message (``errorCode``/``errorMessage``, falling back to ``error``) — typed (from its fields, else
    from its received ``payload``: the typed failure reply of ``reply_with_error``), or a
    GenericMessage payload such as Go's ``{QueryType}Error``. A reply with ``success`` false and no
    error fields is an ordinary answer (the caller inspects it, as in Go).
    """
    if isinstance(reply, ErrorReply):
        return reply.error_code, reply.error_message or reply.error
    if isinstance(reply, GenericMessage):
        fields = reply.payload if isinstance(reply.payload, Mapping) else {}
        if fields.get("success", True) is not False:
            return None
        code, text = fields.get("errorCode"), fields.get("errorMessage") or fields.get("error")
    else:
        if getattr(reply, "success", True) is not False:
            return None
        code = getattr(reply, "error_code", None)
        text = getattr(reply, "error_message", None) or getattr(reply, "error", None)
        if not code and not text and isinstance(payload, Mapping):
            code, text = payload.get("errorCode"), payload.get("errorMessage") or payload.get("error")
    if not code and not text:
        return None
    return str(code or ""), str(text or "")


# ---------------------------------------------------------------------------------- the bridge
class Bridge:
    """Synchronous-looking request/reply over Mmate messaging (one per Client: ``client.bridge``).

    ``connection`` opens the bridge's own channel (for the reply consumer), ``publisher`` sends the
    requests, ``registry`` decodes the replies. The reply queue is declared and consumed lazily by
    the first :meth:`request` (or explicitly with :meth:`start`).
    """

    def __init__(self, connection: Any, publisher: Publisher, *, registry: TypeRegistry | None = None,
                 reply_queue: str | None = None, prefetch: int = DEFAULT_PREFETCH,
                 default_timeout: float = DEFAULT_TIMEOUT, confirm_requests: bool = False,
                 bind_messages_exchange: bool = True) -> None:
        self.connection = connection
        self.publisher = publisher
        self.registry = registry if registry is not None else default_registry
        #: ``bridge.reply.{8 hex}`` unless given (Go's ``WithReplyQueue``)
        self.reply_queue = _checks.name(reply_queue, "reply_queue", "reply queue name") if reply_queue \
            else new_reply_queue_name()
        self.prefetch = prefetch
        self.default_timeout = default_timeout
        #: False (default): requests go out on the bridge's own channel without publisher confirms
        #: -- the reply is the end-to-end confirmation, and an unroutable ``mandatory=True`` request
        #: still fails at once through its basic.return. True: through the publisher (confirmed).
        self.confirm_requests = confirm_requests
        #: True (default): bind the reply queue to ``mmate.messages`` with its own name as routing key
        #: (declaring that exchange as Go does), so replies of mmate-go's RequestReplyServer arrive
        self.bind_messages_exchange = bind_messages_exchange
        self.stats = BridgeStats()
        #: pause between attempts to re-declare and re-consume the reply queue after the broker
        #: cancelled the reply consumer (0.1 s doubling up to 5 s, +-20 %, until it works or closes)
        self.resubscribe_backoff: RetryPolicy = ExponentialBackoff(0.1, 5.0, 2.0, _FOREVER, 0.2)
        self.channel: Any = None
        #: the bridge channel's ``publish_sink()`` (its requests' one-call path), refreshed once closed
        self._sink: Any = None
        #: (class, persistent) -> (plan, is a command, has reply_to) or False (see _request_plan)
        self._plans: dict[tuple[Any, Any], Any] = {}
        self.consumer_tag = ""
        #: correlation id -> the waiting request's future (cleared in place: the reply step holds it)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        #: the reply consumer's callback: the compiled reply step (``_on_reply`` for what it declines)
        self._reply_callback: Any = self._on_reply
        if _STEP:
            self._reply_callback = _replystep.ReplyStep(self, self._pending, self.registry._by_name,
                                                        _decode_envelope, _PLANS, plan_for, error_of,
                                                        (ErrorReply, GenericMessage))
        self._deadlines: _Deadlines | None = None
        self._starting: asyncio.Task[None] | None = None
        self._resubscribing: asyncio.Task[None] | None = None
        self._ready = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<Bridge {self.reply_queue} pending={len(self._pending)} ready={self._ready}>"

    @property
    def pending(self) -> int:
        """Requests waiting for their reply."""
        return len(self._pending)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Declare and consume the reply queue (once; concurrent callers share the same start).

        The start runs in its own task: a caller that gives up (its timeout) leaves it running, and
        its outcome is always retrieved; a failed start is tried again by the next caller.
        """
        if self._ready:
            return
        if self._closed:
            raise errors.BridgeClosedError("the request/reply bridge is closed")
        starting = self._starting
        if starting is None:
            starting = self._starting = asyncio.ensure_future(self._start())
            starting.add_done_callback(self._start_done)
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if starting.cancelled() and (current is None or not current.cancelling()):
                raise errors.BridgeClosedError(  # the bridge closed while starting, not our caller
                    f"request/reply bridge {self.reply_queue} closed while it was starting") from None
            raise

    def _start_done(self, task: asyncio.Task[None]) -> None:
        """Done-callback of a start: forget it (a failed start may be retried) and retrieve its
        outcome, so a start nobody waits for any more never leaves an unretrieved exception."""
        if self._starting is task:
            self._starting = None
        if not task.cancelled() and task.exception() is not None:
            log.debug("starting bridge %s failed: %r", self.reply_queue, task.exception())

    async def _start(self) -> None:
        channel = self.channel
        if channel is None or not channel.is_open:  # first start, or the broker closed it
            self.channel = None
            if channel is not None:
                await _close_quietly(channel)
            channel = await self.connection.channel()
        try:
            await channel.queue_declare(self.reply_queue, durable=False, exclusive=True, auto_delete=True)
            if self.bind_messages_exchange:
                await topology.declare_exchanges(channel, (topology.MESSAGES,))
                await channel.queue_bind(self.reply_queue, topology.MESSAGES, self.reply_queue)
            channel.on_return = self._on_return
            # no_ack: every reply is settled at once anyway (matched, late or malformed), so the
            # broker need not track acks for them; it saves a frame and broker work per reply
            tag = await channel.basic_consume(self.reply_queue, self._reply_callback, exclusive=True,
                                              no_ack=True, on_cancel=self._on_cancel)
        except BaseException:
            self.channel = None
            await _close_quietly(channel)
            raise
        if self._closed:  # closed while starting: leave nothing behind
            await _close_quietly(channel)
            raise errors.BridgeClosedError(f"request/reply bridge {self.reply_queue} closed while starting")
        self.channel = channel
        self.consumer_tag = tag
        self._ready = True

    async def close(self, timeout: float = 5.0) -> None:
        """Cancel the reply consumer, close the bridge's channel (the exclusive, auto-delete reply
        queue goes with it) and fail every waiting request with BridgeClosedError."""
        self._closed = True
        self._fail_pending(errors.BridgeClosedError(
            f"request/reply bridge {self.reply_queue} closed before the reply arrived"))
        for task in (self._resubscribing, self._starting):
            if task is not None and not task.done():
                task.cancel()
        channel, self.channel, self._ready = self.channel, None, False
        if channel is None or not channel.is_open:
            if channel is not None:
                await _close_quietly(channel)
            return
        try:
            if self.consumer_tag:
                await channel.basic_cancel(self.consumer_tag, timeout=timeout)
            await channel.close()
        except errors.MmateError as exc:
            log.debug("closing bridge %s: %s", self.reply_queue, exc)

    def _on_cancel(self, consumer_tag: str) -> None:
        """The broker cancelled the reply consumer (reply queue deleted, or the bridge's channel
        closed, e.g. by a request to a missing exchange): fail the waiting requests at once (their
        replies may be lost) and re-declare and re-consume the reply queue in the background."""
        if self._closed or consumer_tag != self.consumer_tag:
            return
        channel = self.channel
        why = ("its channel was closed by the broker" if channel is not None and not channel.is_open
               else "the reply queue was deleted, or its channel was closed and reopened")
        log.warning("reply consumer of bridge %s was cancelled by the broker (%s); subscribing again",
                    self.reply_queue, why)
        self.stats.cancellations += 1
        self._ready = False
        self.consumer_tag = ""
        self._fail_pending(errors.BridgeClosedError(
            f"the reply consumer of bridge {self.reply_queue} was cancelled by the broker ({why}) while "
            "this request waited; its reply may be lost: send the request again"))
        if self._resubscribing is None or self._resubscribing.done():
            self._resubscribing = asyncio.get_running_loop().create_task(self._resubscribe())
            self._resubscribing.add_done_callback(_retrieve)

    async def _resubscribe(self) -> None:
        """Start again until it works (or the bridge closes), pausing per ``resubscribe_backoff``."""
        attempt = 0
        while not self._ready and not self._closed:
            try:
                await self.start()
            except errors.MmateError as exc:
                attempt += 1
                delay = self.resubscribe_backoff.delay(attempt)
                wait = 5.0 if delay is None else delay
                log.warning("bridge %s could not subscribe again (%s); next attempt in %.2f s",
                            self.reply_queue, exc, wait)
                await asyncio.sleep(wait)
            else:
                self.stats.resubscribes += 1
                log.warning("bridge %s subscribed to its reply queue again", self.reply_queue)

    def _fail_pending(self, exc: BaseException) -> None:
        pending = list(self._pending.values())
        self._pending.clear()  # in place: the reply step holds this dict
        for fut in pending:
            if not fut.done():
                fut.set_exception(exc)

    # ------------------------------------------------------------------ requests
    def address(self, msg: Any, options: dict[str, Any]) -> str:
        """Stamp ``msg`` as a request of this bridge: payload ``replyTo`` = the reply queue (the
        message's ``reply_to`` field, or the ``replyTo`` key of a GenericMessage payload) and a fresh
        UUID v4 correlation id, put into ``options`` (with ``reply_to``) for the publisher, which
        writes it to envelope ``correlationId`` and both correlation headers. Returns the id."""
        if options.get("correlation_id"):
            raise errors.ContractError("request() chooses the correlation id itself; "
                                       "do not pass correlation_id")
        queue = self.reply_queue
        if isinstance(msg, GenericMessage):
            msg.payload = {**(msg.payload or {}), "replyTo": queue}
            msg.reply_to = queue
        elif hasattr(msg, "reply_to"):
            msg.reply_to = queue
        correlation_id = _new_id()  # a UUID v4 from buffered random bytes (no syscall per id)
        options["correlation_id"] = correlation_id
        options["reply_to"] = queue
        return correlation_id

    def prepare_request(self, msg: Any, **options: Any) -> tuple[str, str, str, Outgoing]:
        """What :meth:`request` would publish, without publishing or waiting:
        ``(correlation_id, exchange, routing_key, outgoing)``."""
        correlation_id = self.address(msg, options)
        _route_as_request(msg, options)
        exchange, routing_key, out = self.publisher.prepare(msg, **options)
        return correlation_id, exchange, routing_key, out

    def request(self, msg: Any, timeout: float | None = None, **options: Any) -> Coroutine[Any, Any, Any]:
        """Send ``msg`` and return the typed reply (a coroutine: ``reply = await bridge.request(q)``).

        Commands go out with ``publish_command`` (``target_service`` is required), queries with
        ``publish_query``, anything else with the generic ``publish``; ``options`` are the
        publisher's (``headers``, ``ttl``, ``priority``, ``exchange``/``routing_key``, ...); requests
        are persistent (``delivery_mode`` 2, as Go sends them: a request in flight survives a broker
        restart) unless you pass ``persistent=False`` (faster; the reply then comes transient too).
        ``timeout`` (seconds, default ``default_timeout``) covers publishing and waiting.
        The publisher confirm of the request is not awaited before the reply (that would add a
        broker round trip): a nack/return fails the request unless its reply came first. With
        publish interceptors the request goes through the awaited publish (confirm included).

        Raises RemoteError (``code``, ``message``, ``reply``) for an error reply, RequestTimeout
        when no reply came in time, BridgeClosedError when the bridge closed meanwhile, and the
        publisher's errors. ``msg.reply_to`` is set to the reply queue (as Go does).
        """
        if timeout is None:
            timeout = self.default_timeout
        # persistent by default, as Go: a command in flight survives a broker restart
        options.setdefault("persistent", True)
        if self._ready and not self.publisher.pipeline.has_publish:
            return self._request_now(msg, timeout, options)  # one coroutine less per request
        return self._request(msg, timeout, options)

    async def _request(self, msg: Any, timeout: float, options: dict[str, Any]) -> Any:
        """``request`` while the bridge starts, or with publish interceptors: under one timeout scope."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        type_name = message_type(msg)
        correlation_id = ""
        try:
            async with asyncio.timeout_at(deadline):
                if not self._ready:
                    await self.start()
                correlation_id = self.address(msg, options)
                fut: asyncio.Future[Any] = loop.create_future()
                self._pending[correlation_id] = fut
                publisher = self.publisher
                if publisher.pipeline.has_publish:
                    await self._publish_awaited(msg, options)
                elif self.confirm_requests:
                    self._publish_pipelined(msg, options, fut)
                else:
                    self._publish_direct(msg, options)
                self.stats.sent += 1
                reply = await fut
        except TimeoutError as exc:
            if isinstance(exc, errors.MmateError):  # a named timeout from below (e.g. still reconnecting)
                raise
            self.stats.timeouts += 1
            raise errors.RequestTimeout(
                f"no reply to {type_name} (correlation id {correlation_id or '-'}) within {timeout} s "
                f"on {self.reply_queue}", type_name, timeout, correlation_id) from None
        finally:
            if correlation_id:
                self._pending.pop(correlation_id, None)
        return reply

    async def _request_now(self, msg: Any, timeout: float, options: dict[str, Any]) -> Any:
        """``request`` on a started bridge without publish interceptors: the request is sent at once
        and the reply is the only wait, bounded by the deadline buckets (cheaper than an
        asyncio.timeout scope or a loop timer per request; the timeout fires at most 50 ms late)."""
        if not self._ready or self.publisher.pipeline.has_publish:  # changed since request() was called
            return await self._request(msg, timeout, options)
        deadlines = self._deadlines
        if deadlines is not None and _task_of(deadlines.loop) is not None:
            loop = deadlines.loop  # inside one of its tasks: the running loop
        else:
            loop = asyncio.get_running_loop()
            if deadlines is None or deadlines.loop is not loop:
                deadlines = self._deadlines = _Deadlines(loop)
        deadline = loop.time() + timeout
        planned: Any = None
        if len(options) == 1 and not self.confirm_requests:  # only ``persistent`` (request() sets it)
            planned = self._plans.get((msg.__class__, options.get("persistent")))
            if planned is None:
                planned = self._request_plan(msg, options.get("persistent"))
        queue = self.reply_queue
        if planned:  # address() for a typed message, inlined: its reply address, a new correlation id
            if planned[1]:
                require_target_service(msg)
            if planned[2]:
                msg.reply_to = queue
            correlation_id = _new_id()
        else:
            correlation_id = self.address(msg, options)
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[correlation_id] = fut
        try:
            if planned:  # one call: the request's frames straight into the bridge channel's buffer
                sink = self._sink
                if sink is None or not sink.open:
                    sink = self._refresh_sink()
                if sink is None or sink.write(planned[0], msg, correlation_id, queue) is None:
                    options["correlation_id"] = correlation_id
                    options["reply_to"] = queue
                    self._publish_direct(msg, options)
            elif self.confirm_requests:
                self._publish_pipelined(msg, options, fut)
            else:
                self._publish_direct(msg, options)
            self.stats.sent += 1
            bucket = deadlines.add(deadline, fut)
            try:
                return await fut
            finally:
                bucket.discard(fut)
        except _RequestExpired:
            self.stats.timeouts += 1
            type_name = message_type(msg)
            raise errors.RequestTimeout(
                f"no reply to {type_name} (correlation id {correlation_id}) within {timeout} s "
                f"on {self.reply_queue}", type_name, timeout, correlation_id) from None
        finally:
            self._pending.pop(correlation_id, None)

    async def _publish_awaited(self, msg: Any, options: dict[str, Any]) -> None:
        """Publish through the publisher's awaited verbs (interceptors run; a confirm is awaited)."""
        kind = kind_of(msg)
        if kind is MessageKind.COMMAND:
            await self.publisher.publish_command(msg, **options)
        elif kind is MessageKind.QUERY:
            await self.publisher.publish_query(msg, **options)
        else:
            await self.publisher.publish(msg, **options)

    def _request_plan(self, msg: Any, persistent: Any) -> Any:
        """``(plan, is a command, has reply_to)`` of ``msg``'s class sent as a request with only
        ``persistent`` given (cached per class): the publisher's compiled plan with the request's
        route; False when the general path must send it (generic messages, interceptors, ...)."""
        planned: Any = False
        if not isinstance(msg, GenericMessage):
            try:
                kind = kind_of(msg)
            except Exception:  # the general path raises the real error
                kind = None
            if kind is not None:
                opts: dict[str, Any] = {"persistent": persistent}
                _route_as_request_kind(kind, opts)
                plan = self.publisher.plan_for(msg, **opts)
                if plan is not None:
                    planned = (plan, kind is MessageKind.COMMAND, hasattr(msg, "reply_to"))
        if len(self._plans) >= _PLANS_MAX:
            self._plans.clear()
        self._plans[(msg.__class__, persistent)] = planned
        return planned

    def _refresh_sink(self) -> Any:
        """The bridge channel's ``publish_sink()`` (None: that transport has none, or it is closed)."""
        get_sink = getattr(self.channel, "publish_sink", None)
        sink = self._sink = get_sink() if get_sink is not None else None
        return sink

    def _publish_direct(self, msg: Any, options: dict[str, Any]) -> None:
        """Publish the request on the bridge's channel, unconfirmed (see ``confirm_requests``), built
        by the publisher's general path."""
        _route_as_request(msg, options)
        mandatory = bool(options.pop("mandatory", False))
        exchange, routing_key, out = self.publisher.prepare(msg, **options)
        self.channel.publish_nowait(out.body, exchange, routing_key, out.properties, mandatory=mandatory)

    def _on_return(self, delivery: Any) -> None:
        """basic.return of an unroutable ``mandatory=True`` request: fail it now, not at its timeout."""
        correlation_id = delivery.properties.correlation_id
        fut = self._pending.pop(correlation_id, None) if correlation_id else None
        if fut is not None and not fut.done():
            fut.set_exception(errors.PublishReturnedError(
                f"request to exchange {delivery.exchange!r} with routing key {delivery.routing_key!r} "
                f"was returned: {delivery.reply_code} {delivery.reply_text} (nobody consumes it)",
                delivery.reply_code, delivery.reply_text))

    def _publish_pipelined(self, msg: Any, options: dict[str, Any], reply: asyncio.Future[Any]) -> None:
        """Queue the request without waiting for its publisher confirm (a broker round trip before
        the reply could even be awaited): the confirm settles while the reply is on its way. A
        nack/return (or a channel closed before the confirm) fails ``reply`` unless the reply came
        first; the confirm future's outcome is always retrieved."""
        _route_as_request(msg, options)
        confirm = self.publisher.publish_nowait(msg, **options)
        if confirm is not None:
            confirm.add_done_callback(functools.partial(_confirm_settled, reply))

    # ------------------------------------------------------------------ reply consumer
    def _on_reply(self, delivery: Any) -> None:
        """Reply-queue callback (plain: runs inline in the reader). Always acks: an unmatched or
        malformed reply is counted and dropped, never redelivered.

        A reply goes through the pipeline's wire stage first, like every delivery of a subscription
        (signature, freshness, decryption; before anything decodes it): one it refuses is dropped and
        counted in ``stats.refused`` — it does not fail the request, so a forged reply cannot cut
        short the wait for the genuine one; without that the request times out."""
        stats = self.stats
        body = delivery.body
        pipeline = self.publisher.pipeline
        if pipeline.has_wire:
            try:
                body = pipeline.verify(delivery, self.reply_queue)
            except Exception as exc:
                stats.refused += 1
                reason = exc.reason if isinstance(exc, errors.InterceptorError) else "interceptor-error"
                log.warning("dropping a reply on %s refused before decoding (%s): %s", self.reply_queue,
                            reason, exc)
                return
        try:
            env = _decode_envelope(body)
        except errors.EnvelopeError as exc:
            stats.malformed += 1
            log.warning("dropping malformed reply on %s: %s", self.reply_queue, exc)
            return
        correlation_id = env.correlation_id or reply_correlation_id(env, delivery.properties)
        fut = self._pending.pop(correlation_id, None) if correlation_id else None
        if fut is None or fut.done():
            stats.late_replies += 1
            log.debug("dropping %s reply with unknown or expired correlation id %r on %s", env.type,
                      correlation_id, self.reply_queue)
            return
        try:
            reply = from_envelope(env, self.registry)
        except (errors.ContractError, errors.EnvelopeError) as exc:
            stats.malformed += 1
            fut.set_exception(exc)
            return
        stats.replied += 1
        failure = error_of(reply, env.payload)
        if failure is None:
            fut.set_result(reply)
        else:
            stats.errors += 1
            fut.set_exception(errors.RemoteError(failure[0], failure[1], reply))


# ---------------------------------------------------------------------------------- the responder side
def is_request(msg: Any) -> bool:
    """A command or a query; a GenericMessage counts when its ``x-message-kind`` header says so or,
    without that header, when its payload carries a ``replyTo``."""
    kind = kind_of(msg)
    if kind is MessageKind.COMMAND or kind is MessageKind.QUERY:
        return True
    return (kind is MessageKind.MESSAGE and isinstance(msg, GenericMessage) and isinstance(msg.payload, dict)
            and bool(msg.payload.get("replyTo")))


def reply_persistent(ctx: Any) -> bool:
    """Whether the reply to the request of ``ctx`` goes out persistent: as its request came, so
    persistent (Go's ``delivery_mode`` 2, our default) unless the requester sent it transient."""
    return getattr(ctx.delivery.properties, "delivery_mode", None) != 1


async def reply_with_error(publisher: Publisher, exc: BaseException, msg: Any, ctx: Any, *,
                           dispatcher: Any = None) -> bool:
    """The error-reply policy (a subscriber's error hook; the Client binds its reply publisher and
    dispatcher): a handler raised for ``msg``. A request (command/query with a reply address) is
    answered and True is returned, so the request is acked rather than dead-lettered; anything else
    keeps the normal failure path (False).

    The answer carries ``errorCode`` (the exception's ``code``/``error_code`` attribute, else
    ``HANDLER_ERROR``), ``errorMessage`` and ``error`` (``str(exc)``), ``success`` false and the
    request's correlation id. Its type is the handler's reply type when known (see
    :func:`reply_type_for`): then the payload is that type's zero value plus those fields, a reply a
    Go requester has registered (a Go bridge registers only its own reply types and drops anything
    else, so the request would time out with the error lost). Otherwise it is an ``ErrorReply``.
    """
    if not is_request(msg):
        return False
    reply_to = ctx.reply_to
    if not reply_to:
        return False
    code = str(getattr(exc, "code", None) or getattr(exc, "error_code", None) or "HANDLER_ERROR")
    text = str(exc) or type(exc).__name__
    reply_type = reply_type_for(msg, ctx, dispatcher)
    reply: Any = None
    if reply_type is not None:
        reply = typed_error_reply(reply_type, code, text)
    if reply is None:
        reply = ErrorReply(error_code=code, error_message=text, success=False)
    await publisher.publish_reply(reply, reply_to, correlation_id=ctx.correlation_id or ctx.message_id,
                                  persistent=reply_persistent(ctx))
    return True


def typed_error_reply(reply_type: type, code: str, text: str) -> GenericMessage | None:
    """A failure answer of type ``reply_type`` as Go's error replies look (§6.4): the type's zero
    value (every field at its default or zero) with ``success`` false, ``errorCode``,
    ``errorMessage`` and ``error``. None when that type cannot be built from zero values."""
    try:
        payload = to_payload(contract_plan(reply_type).zero())
    except (errors.ContractError, TypeError, ValueError) as exc:
        log.warning("cannot build a failure reply of type %s (%s); answering with an ErrorReply",
                    reply_type.__qualname__, exc)
        return None
    payload["success"] = False
    for key, value in (("errorCode", code), ("errorMessage", text), ("error", text)):
        if not payload.get(key):
            payload[key] = value
    return GenericMessage(type=message_type(reply_type), payload=payload)


def reply_type_for(msg: Any, ctx: Any, dispatcher: Any = None) -> type | None:
    """The reply class a request's handler answers with, when it is known: the one reply class the
    return annotations of the handlers for its type name (``-> OrderReply``, ``-> OrderReply | None``)
    agree on, else the one given at registration (``register(GetOrder, reply=OrderReply)``). The
    base classes (``Reply``, ``ErrorReply`` and its subclasses) name no particular type: None."""
    if dispatcher is not None:
        found = {t for spec in dispatcher.lookup(ctx.envelope.type)
                 if (t := _annotated_reply(spec.fn)) is not None}
        if len(found) == 1:
            return found.pop()
    if isinstance(msg, GenericMessage):
        return None
    return reply_type_of(msg)


def _annotated_reply(fn: Any) -> type | None:
    """The particular reply class in ``fn``'s return annotation, or None."""
    target = fn if isinstance(fn, types.FunctionType | types.MethodType) else getattr(fn, "__call__", fn)  # noqa: B004
    try:
        ret = typing.get_type_hints(target).get("return")
    except Exception:  # an annotation that does not resolve names nothing
        return None
    origin = typing.get_origin(ret)
    if origin in (cabc.Awaitable, cabc.Coroutine):
        ret = typing.get_args(ret)[-1]
        origin = typing.get_origin(ret)
    options = typing.get_args(ret) if origin is typing.Union or origin is types.UnionType else (ret,)
    found = [t for t in options if _is_particular_reply(t)]
    return found[0] if len(found) == 1 else None


def _is_particular_reply(tp: Any) -> bool:
    if not isinstance(tp, type) or tp is GenericMessage or issubclass(tp, ErrorReply):
        return False
    if tp.__module__.startswith("mmate_fast.contracts"):  # Reply, PydanticReply: the base classes
        return False
    try:
        return kind_of(tp) is MessageKind.REPLY
    except errors.ContractError:
        return False


def _route_as_request(msg: Any, options: dict[str, Any]) -> None:
    """Route commands and queries as ``publish_command``/``publish_query`` do (a command needs its
    target service); anything else keeps the generic route."""
    kind = kind_of(msg)
    if kind is MessageKind.COMMAND:
        require_target_service(msg)
    _route_as_request_kind(kind, options)


def _route_as_request_kind(kind: MessageKind, options: dict[str, Any]) -> None:
    if kind is MessageKind.COMMAND or kind is MessageKind.QUERY:
        options["kind"] = kind


async def _close_quietly(channel: Any) -> None:
    """Close a channel of the bridge that is no longer used (closing a closed one is a no-op)."""
    try:
        await channel.close()
    except errors.MmateError as exc:
        log.debug("closing a bridge channel: %s", exc)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Done-callback of a background task: its exception is logged, never left unretrieved."""
    if not task.cancelled() and task.exception() is not None:
        log.error("bridge background task failed", exc_info=task.exception())


def _confirm_settled(reply: asyncio.Future[Any], confirm: asyncio.Future[Any]) -> None:
    """Done-callback of a request's publisher confirm: a failed confirm fails the waiting request."""
    if confirm.cancelled():
        return
    exc = confirm.exception()  # always retrieved: never an "exception was never retrieved" warning
    if exc is not None and not reply.done():
        reply.set_exception(exc)


__all__ = [
    "DEFAULT_PREFETCH",
    "REPLY_QUEUE_PREFIX",
    "Bridge",
    "BridgeStats",
    "decode_reply",
    "error_of",
    "is_request",
    "new_reply_queue_name",
    "reply_correlation_id",
    "reply_persistent",
    "reply_type_for",
    "reply_with_error",
    "typed_error_reply",
]
