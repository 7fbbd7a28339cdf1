"""Automatic recovery: a connection that reconnects by itself and restores what was built on it.

When the connection drops (network cut, broker restart, ``rabbitmqctl close_connection``, missed
heartbeats), :class:`RobustConnection` reconnects with exponential backoff and jitter, then every
:class:`RobustChannel` re-opens (with publisher confirms again if it had them), re-declares the
exchanges, queues and bindings declared through it (server-named queues get their new name mapped),
restores its QoS and re-starts its consumers with the same tags and callbacks. Publishes that were
not confirmed when the link died are re-sent (their futures stay pending across the reconnect), so
nothing is silently dropped; publishes made while disconnected either wait (bounded: buffered and
sent after recovery; ``await publish()`` waits up to ``wait_timeout``) or fail fast with
ConnectionClosedError, by policy. Delivery tags of a new connection are shifted (generation << 40)
so that a late ack of a pre-reconnect delivery is dropped instead of acking a different message;
the broker redelivers those (at-least-once).

Recovery is observable: ``on_disconnected``/``on_reconnecting``/``on_reconnected``/``on_failed``
callbacks, log lines on ``mmate_fast.amqp.recovery`` and :class:`RecoveryStats`.
Channel-level errors (404, 406, ...) are not "recovered": they close that channel as usual.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.amqp.connection import Connection, connect
from mmate_fast.amqp.url import ConnectionParameters, parse_url
from mmate_fast.transports.base import CancelCallback, ConsumerCallback, QueueDeclareOk, ReturnCallback

_frames = load("frames")
_encode_properties = _frames.encode_properties
_EMPTY_PROPERTIES: bytes = _frames.encode_properties(None)

log = logging.getLogger("mmate_fast.amqp.recovery")

_GEN_SHIFT = 40
_TAG_MASK = (1 << _GEN_SHIFT) - 1
_tags = itertools.count(1)


@dataclass
class RecoveryPolicy:
    """How to reconnect and what publishers see meanwhile."""

    initial_delay: float = 0.25
    max_delay: float = 15.0
    multiplier: float = 2.0
    #: +- fraction of random jitter on every delay
    jitter: float = 0.2
    #: None = retry forever
    max_attempts: int | None = None
    #: "wait": buffer publishes / block ``await publish()`` until reconnected (bounded);
    #: "fail": raise ConnectionClosedError at once while disconnected
    on_disconnect: Literal["wait", "fail"] = "wait"
    #: how long ``await publish()`` and topology calls wait for the connection to come back
    wait_timeout: float = 30.0
    #: how many publishes may be buffered while disconnected (then ConnectionBlockedError)
    max_buffered: int = 100_000

    def delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.initial_delay * (self.multiplier ** max(0, attempt - 1)))
        return max(0.0, base * (1.0 + random.uniform(-self.jitter, self.jitter)))


@dataclass
class RecoveryStats:
    """Counters of one RobustConnection."""

    disconnects: int = 0
    reconnects: int = 0
    failed_attempts: int = 0
    republished: int = 0
    buffered_sent: int = 0
    stale_acks_dropped: int = 0
    last_error: str = ""
    history: list[str] = field(default_factory=list)


RecoveryCallback = Callable[..., Any]


class RobustConnection:
    """A Connection facade that survives connection loss. Create with :func:`connect_robust`."""

    def __init__(self, params: ConnectionParameters, policy: RecoveryPolicy,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.params = params
        self.policy = policy
        self.loop = loop
        self.stats = RecoveryStats()
        self._conn: Connection | None = None
        self._channels: list[RobustChannel] = []
        self._connected = asyncio.Event()
        self._recovering: asyncio.Task[None] | None = None
        self._closed_exc: BaseException | None = None
        self._close_waiter: asyncio.Future[None] = loop.create_future()
        self._user_closing = False
        self.on_disconnected: list[RecoveryCallback] = []
        self.on_reconnecting: list[RecoveryCallback] = []
        self.on_reconnected: list[RecoveryCallback] = []
        self.on_failed: list[RecoveryCallback] = []

    # ------------------------------------------------------------------ state
    @property
    def is_closed(self) -> bool:
        return self._closed_exc is not None

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set() and self._conn is not None and not self._conn.is_closed

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolves when closed by the user or when recovery gave up (not on a mere disconnect)."""
        return self._close_waiter

    @property
    def connection(self) -> Connection | None:
        """The current underlying connection (None while disconnected)."""
        return self._conn

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else ("connected" if self.is_connected else "reconnecting")
        return f"<RobustConnection {self.params.safe_url()} {state} reconnects={self.stats.reconnects}>"

    def __getattr__(self, name: str) -> Any:
        # frame_max, heartbeat, server_properties, blocked, ... of the current connection
        if name.startswith("_") or self.__dict__.get("_conn") is None:
            raise AttributeError(name)
        return getattr(self.__dict__["_conn"], name)

    async def wait_connected(self, timeout: float | None = None) -> Connection:
        """The live connection, waiting (bounded) while a reconnect is in progress."""
        if self._closed_exc is not None:
            raise self._closed_exc
        if not self.is_connected:
            if self.policy.on_disconnect == "fail":
                raise errors.ConnectionClosedError(
                    f"disconnected from {self.params.safe_url()}; reconnecting (on_disconnect='fail')")
            wait = self.policy.wait_timeout if timeout is None else timeout
            try:
                async with asyncio.timeout(wait):
                    while not self.is_connected:
                        if self._closed_exc is not None:
                            raise self._closed_exc
                        await self._connected.wait()
            except TimeoutError:
                raise errors.OperationTimeout(
                    f"still reconnecting to {self.params.safe_url()} after {wait} s") from None
        assert self._conn is not None
        return self._conn

    # ------------------------------------------------------------------ lifecycle
    async def _start(self, timeout: float | None) -> None:
        conn = await connect(self.params, timeout=timeout, loop=self.loop)
        self._attach(conn)

    def _attach(self, conn: Connection) -> None:
        self._conn = conn
        conn.on_close.append(self._on_lost)
        self._connected.set()

    def _on_lost(self, conn: Connection, exc: BaseException | None) -> None:
        if conn is not self._conn or self._user_closing or self._closed_exc is not None:
            return
        self._connected.clear()
        for ch in self._channels:
            ch._link_lost()
        self.stats.disconnects += 1
        self.stats.last_error = str(exc)
        self._note(f"disconnected: {exc}")
        log.warning("connection to %s lost (%s); recovering", self.params.safe_url(), exc)
        self._fire(self.on_disconnected, self, exc)
        if self._recovering is None or self._recovering.done():
            self._recovering = self.loop.create_task(self._recover())

    async def _recover(self) -> None:
        attempt = 0
        while self._closed_exc is None:
            attempt += 1
            if self.policy.max_attempts is not None and attempt > self.policy.max_attempts:
                self._give_up(errors.ConnectionClosedError(
                    f"could not reconnect to {self.params.safe_url()} after {attempt - 1} attempts: "
                    f"{self.stats.last_error}"))
                return
            delay = self.policy.delay(attempt)
            self._fire(self.on_reconnecting, self, attempt, delay)
            log.info("reconnect attempt %d to %s in %.2f s", attempt, self.params.safe_url(), delay)
            await asyncio.sleep(delay)
            if self._closed_exc is not None:
                return
            conn: Connection | None = None
            try:
                conn = await connect(self.params, timeout=self.params.connection_timeout, loop=self.loop)
                self._conn = conn
                conn.on_close.append(self._on_lost)
                for ch in list(self._channels):
                    await ch._restore(conn)
            except Exception as exc:
                self.stats.failed_attempts += 1
                self.stats.last_error = str(exc)
                self._note(f"attempt {attempt} failed: {exc}")
                log.warning("reconnect attempt %d failed: %s", attempt, exc)
                if conn is not None and not conn.is_closed:
                    # a half-restored connection: drop it quietly (it is not a new disconnect)
                    if self._on_lost in conn.on_close:
                        conn.on_close.remove(self._on_lost)
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
                continue
            self.stats.reconnects += 1
            self._note(f"reconnected after {attempt} attempt(s)")
            log.warning("reconnected to %s after %d attempt(s)", self.params.safe_url(), attempt)
            self._connected.set()
            for ch in list(self._channels):
                ch._flush_buffered()
            self._fire(self.on_reconnected, self)
            return

    def _give_up(self, exc: BaseException) -> None:
        log.error("giving up recovery: %s", exc)
        self._note(f"gave up: {exc}")
        self._closed_exc = exc
        for ch in list(self._channels):
            ch._fail_everything(exc)
        self._connected.set()  # wake waiters; they see _closed_exc
        if not self._close_waiter.done():
            self._close_waiter.set_result(None)
        self._fire(self.on_failed, self, exc)

    def _note(self, text: str) -> None:
        self.stats.history.append(text)
        del self.stats.history[:-50]

    @staticmethod
    def _fire(callbacks: list[RecoveryCallback], *args: Any) -> None:
        for cb in list(callbacks):
            try:
                cb(*args)
            except Exception:
                log.exception("recovery callback failed")

    async def channel(self, *, publisher_confirms: bool = False,
                      timeout: float | None = None) -> RobustChannel:
        conn = await self.wait_connected(timeout)
        ch = RobustChannel(self, publisher_confirms)
        await ch._restore(conn)
        self._channels.append(ch)
        return ch

    async def drain(self, timeout: float | None = None) -> None:
        conn = await self.wait_connected(timeout)
        await conn.drain(timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Close for good: stop recovering, close the connection, fail what is still pending."""
        if self._closed_exc is not None:
            return
        self._user_closing = True
        exc = errors.ConnectionClosedError("connection closed by client", 200, "Normal shutdown")
        self._closed_exc = exc
        if self._recovering is not None and not self._recovering.done():
            self._recovering.cancel()
        if self._conn is not None and not self._conn.is_closed:
            await self._conn.close(timeout)
        for ch in list(self._channels):
            ch._fail_everything(exc)
        self._connected.set()
        if not self._close_waiter.done():
            self._close_waiter.set_result(None)

    async def __aenter__(self) -> RobustConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _forget(self, ch: RobustChannel) -> None:
        if ch in self._channels:
            self._channels.remove(ch)


class _ConsumerRecord:
    __slots__ = ("arguments", "callback", "exclusive", "no_ack", "on_cancel", "queue")

    def __init__(self, queue: str, callback: ConsumerCallback, no_ack: bool, exclusive: bool,
                 arguments: Mapping[str, Any] | None, on_cancel: CancelCallback | None) -> None:
        self.queue = queue
        self.callback = callback
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.arguments = dict(arguments or {})
        self.on_cancel = on_cancel


class RobustChannel:
    """A channel that is re-opened and restored after every reconnect (see module docstring)."""

    def __init__(self, robust: RobustConnection, publisher_confirms: bool) -> None:
        self._robust = robust
        self._loop = robust.loop
        self._confirms = publisher_confirms
        self._ch: Any = None
        self._generation = 0
        self._tag_base = 0
        self._topology: dict[tuple[Any, ...], tuple[str, tuple[Any, ...], dict[str, Any]]] = {}
        self._qos: tuple[int, int, bool] | None = None
        self._consumers: dict[str, _ConsumerRecord] = {}
        #: confirm mode: (future, body, exchange, routing_key, props, mandatory) not yet settled
        self._pending: deque[tuple[asyncio.Future[bool], bytes, str, str, bytes, bool]] = deque()
        #: publishes made while disconnected: (future | None, body, exchange, routing_key, props, mandatory)
        self._buffer: deque[tuple[asyncio.Future[bool] | None, bytes, str, str, bytes, bool]] = deque()
        self._nacked = 0
        self._closed_exc: BaseException | None = None
        self.on_return: ReturnCallback | None = None
        self.channel_id = 0

    def __repr__(self) -> str:
        return (f"<RobustChannel {self.channel_id} generation={self._generation} "
                f"confirms={self._confirms} {'open' if self.is_open else 'closed'}>")

    # ------------------------------------------------------------------ state
    @property
    def is_open(self) -> bool:
        if self._closed_exc is not None:
            return False
        ch = self._ch
        if ch is None or ch.is_open:
            return True
        # closed by a channel-level error (not by a connection loss we will recover from)
        return not isinstance(ch._closed_exc, errors.ChannelError)

    @property
    def publisher_confirms(self) -> bool:
        return self._confirms

    @property
    def channel(self) -> Any:
        """The current underlying Channel."""
        return self._ch

    def _check(self) -> None:
        if self._closed_exc is not None:
            raise self._closed_exc
        ch = self._ch
        if ch is not None and isinstance(ch._closed_exc, errors.ChannelError):
            raise ch._closed_exc

    async def _live(self, timeout: float | None = None) -> Any:
        """The underlying channel once connected (waits, bounded, during recovery)."""
        self._check()
        if not self._robust.is_connected or self._ch is None or not self._ch.is_open:
            await self._robust.wait_connected(timeout)
            self._check()
        return self._ch

    # ------------------------------------------------------------------ restore after (re)connect
    async def _restore(self, conn: Connection) -> None:
        ch = await conn.channel()
        ch._retain_on_loss = True
        ch.on_return = self._on_return
        if self._confirms:
            await ch.confirm_select()
        renamed: dict[str, str] = {}
        for key, (method, args, kwargs) in list(self._topology.items()):
            if method == "queue_declare":
                server_named = kwargs.pop("_server_named", False)
                ok = await ch.queue_declare("" if server_named else args[0], **kwargs)
                if server_named:
                    kwargs["_server_named"] = True
                    if ok.queue != args[0]:
                        renamed[args[0]] = ok.queue
                        del self._topology[key]
                        self._topology[("q", ok.queue)] = (method, (ok.queue,), kwargs)
                continue
            if method == "queue_bind" and args[0] in renamed:
                del self._topology[key]
                args = (renamed[args[0]], *args[1:])
                self._topology[("qb", *args[:3])] = (method, args, kwargs)
            await getattr(ch, method)(*args, **kwargs)
        if self._qos is not None:
            await ch.basic_qos(self._qos[0], self._qos[1], global_=self._qos[2])
        self._generation += 1
        self._tag_base = (self._generation - 1) << _GEN_SHIFT
        # the new channel becomes current before consumers restart: deliveries that arrive in the
        # same read as consume-ok are settled right away, against this channel
        self._ch = ch
        self.channel_id = ch.channel_id
        for tag, rec in list(self._consumers.items()):
            if rec.queue in renamed:
                rec.queue = renamed[rec.queue]
            try:
                await ch.basic_consume(rec.queue, self._wrap(rec.callback), consumer_tag=tag,
                                       no_ack=rec.no_ack, exclusive=rec.exclusive, arguments=rec.arguments,
                                       on_cancel=self._cancelled_by_broker(tag))
            except errors.ChannelClosedError as exc:
                log.error("could not re-consume %r after reconnect: %s", rec.queue, exc)
                self._consumers.pop(tag, None)
                if rec.on_cancel is not None:
                    rec.on_cancel(tag)
                raise
        if not self._confirms:
            # hot path: without confirms there is nothing to track, so publish straight into the live
            # channel (one call less per message); switched back off the moment the link drops
            self.publish_nowait = ch.publish_nowait  # type: ignore[method-assign]
        if self._generation == 1:
            # first connection: delivery tags are not shifted and none can be stale yet, so acks go
            # straight to the channel until the link drops (later generations check every tag)
            self.basic_ack = ch.basic_ack  # type: ignore[method-assign]
        if self._pending:
            resend = [p for p in self._pending if not p[0].done()]
            self._pending.clear()
            for p in resend:
                ch._publish_tracked(p[1], p[2], p[3], p[4], p[5], p[0])
                self._pending.append(p)
            self._robust.stats.republished += len(resend)
            if resend:
                log.warning("re-sent %d unconfirmed publish(es) on channel %d after reconnect",
                            len(resend), ch.channel_id)

    def _link_lost(self) -> None:
        """The connection dropped: route publishes through the buffering path and acks through the
        stale-tag check again."""
        self.__dict__.pop("publish_nowait", None)
        self.__dict__.pop("basic_ack", None)

    def _flush_buffered(self) -> None:
        """Send what was published while disconnected (called once recovery completed)."""
        buf, self._buffer = self._buffer, deque()
        for fut, body, exchange, routing_key, props, mandatory in buf:
            if fut is not None and fut.done():
                continue
            try:
                self._send(body, exchange, routing_key, props, mandatory, fut)
            except errors.MmateError as exc:
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
        self._robust.stats.buffered_sent += len(buf)

    def _wrap(self, callback: ConsumerCallback) -> ConsumerCallback:
        base = self._tag_base
        if base == 0:
            return callback
        if asyncio.iscoroutinefunction(callback):
            async def shifted_async(delivery: Any) -> None:
                delivery.delivery_tag += base
                await callback(delivery)

            return shifted_async

        def shifted(delivery: Any) -> Any:
            delivery.delivery_tag += base
            return callback(delivery)

        return shifted

    def _cancelled_by_broker(self, tag: str) -> CancelCallback:
        def cancelled(consumer_tag: str) -> None:
            rec = self._consumers.pop(tag, None)
            if rec is not None and rec.on_cancel is not None:
                rec.on_cancel(consumer_tag)

        return cancelled

    def _on_return(self, delivery: Any) -> None:
        cb = self.on_return
        if cb is not None:
            cb(delivery)

    def _fail_everything(self, exc: BaseException) -> None:
        if self._closed_exc is None:
            self._closed_exc = exc
        for pending in self._pending:
            if not pending[0].done():
                pending[0].set_exception(exc)
        self._pending.clear()
        for buffered in self._buffer:
            waiter = buffered[0]
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
        self._buffer.clear()

    # ------------------------------------------------------------------ topology (recorded)
    async def exchange_declare(self, exchange: str, exchange_type: str = "direct", *, passive: bool = False,
                               durable: bool = False, auto_delete: bool = False, internal: bool = False,
                               arguments: Mapping[str, Any] | None = None,
                               timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        kwargs = {"passive": passive, "durable": durable, "auto_delete": auto_delete, "internal": internal,
                  "arguments": dict(arguments or {})}
        await ch.exchange_declare(exchange, exchange_type, timeout=timeout, **kwargs)
        if not passive:
            self._topology[("x", exchange)] = ("exchange_declare", (exchange, exchange_type), kwargs)

    async def exchange_delete(self, exchange: str, *, if_unused: bool = False,
                              timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        await ch.exchange_delete(exchange, if_unused=if_unused, timeout=timeout)
        for key in [k for k in self._topology if exchange in k[1:3] and k[0] in ("x", "xb", "qb")]:
            del self._topology[key]

    async def exchange_bind(self, destination: str, source: str, routing_key: str = "",
                            arguments: Mapping[str, Any] | None = None, timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        await ch.exchange_bind(destination, source, routing_key, arguments, timeout=timeout)
        self._topology[("xb", destination, source, routing_key)] = (
            "exchange_bind", (destination, source, routing_key, dict(arguments or {})), {})

    async def exchange_unbind(self, destination: str, source: str, routing_key: str = "",
                              arguments: Mapping[str, Any] | None = None,
                              timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        await ch.exchange_unbind(destination, source, routing_key, arguments, timeout=timeout)
        self._topology.pop(("xb", destination, source, routing_key), None)

    async def queue_declare(self, queue: str = "", *, passive: bool = False, durable: bool = False,
                            exclusive: bool = False, auto_delete: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            timeout: float | None = None) -> QueueDeclareOk:
        ch = await self._live(timeout)
        kwargs: dict[str, Any] = {"durable": durable, "exclusive": exclusive, "auto_delete": auto_delete,
                                  "arguments": dict(arguments or {})}
        ok = await ch.queue_declare(queue, passive=passive, timeout=timeout, **kwargs)
        if not passive:
            if not queue:
                kwargs["_server_named"] = True
            self._topology[("q", ok.queue)] = ("queue_declare", (ok.queue,), kwargs)
        return ok

    async def queue_delete(self, queue: str, *, if_unused: bool = False, if_empty: bool = False,
                           timeout: float | None = None) -> int:
        ch = await self._live(timeout)
        count = await ch.queue_delete(queue, if_unused=if_unused, if_empty=if_empty, timeout=timeout)
        for key in [k for k in self._topology if k[0] in ("q", "qb") and k[1] == queue]:
            del self._topology[key]
        for tag in [t for t, rec in self._consumers.items() if rec.queue == queue]:
            self._consumers.pop(tag, None)
        return int(count)

    async def queue_bind(self, queue: str, exchange: str, routing_key: str = "",
                         arguments: Mapping[str, Any] | None = None, timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        await ch.queue_bind(queue, exchange, routing_key, arguments, timeout=timeout)
        self._topology[("qb", queue, exchange, routing_key)] = (
            "queue_bind", (queue, exchange, routing_key, dict(arguments or {})), {})

    async def queue_unbind(self, queue: str, exchange: str, routing_key: str = "",
                           arguments: Mapping[str, Any] | None = None, timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        await ch.queue_unbind(queue, exchange, routing_key, arguments, timeout=timeout)
        self._topology.pop(("qb", queue, exchange, routing_key), None)

    async def queue_purge(self, queue: str, *, timeout: float | None = None) -> int:
        ch = await self._live(timeout)
        return int(await ch.queue_purge(queue, timeout=timeout))

    async def basic_qos(self, prefetch_count: int = 0, prefetch_size: int = 0, *, global_: bool = False,
                        timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        await ch.basic_qos(prefetch_count, prefetch_size, global_=global_, timeout=timeout)
        self._qos = (prefetch_count, prefetch_size, global_)

    async def confirm_select(self, *, timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        await ch.confirm_select(timeout=timeout)
        self._confirms = True
        self._link_lost()  # confirms are tracked here: leave the direct path

    # ------------------------------------------------------------------ publish
    def _send(self, body: bytes, exchange: str, routing_key: str, props: bytes, mandatory: bool,
              fut: asyncio.Future[bool] | None) -> asyncio.Future[bool] | None:
        ch = self._ch
        if self._confirms:
            if fut is None:
                fut = self._loop.create_future()
            ch._publish_tracked(body, exchange, routing_key, props, mandatory, fut)
            pending = self._pending
            pending.append((fut, body, exchange, routing_key, props, mandatory))
            while pending[0][0].done():
                self._settled(pending.popleft()[0])
            return fut
        ch.publish_nowait(body, exchange, routing_key, props, mandatory=mandatory)
        return None

    def _settled(self, fut: asyncio.Future[bool]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            self._nacked += 1

    def publish_nowait(self, body: bytes, exchange: str = "", routing_key: str = "",
                       properties: Any = None, *, mandatory: bool = False) -> asyncio.Future[bool] | None:
        if properties is None:
            props = _EMPTY_PROPERTIES
        elif type(properties) is bytes:
            props = properties
        else:
            props = _encode_properties(properties)
        ch = self._ch
        if ch is not None and ch._open and ch._closed_exc is None and self._robust._connected.is_set():
            return self._send(body, exchange, routing_key, props, mandatory, None)
        self._check()
        if self._robust.policy.on_disconnect == "fail":
            raise errors.ConnectionClosedError(
                f"disconnected from {self._robust.params.safe_url()}; reconnecting (on_disconnect='fail')")
        if len(self._buffer) >= self._robust.policy.max_buffered:
            raise errors.ConnectionBlockedError(
                f"{len(self._buffer)} publishes already wait for the reconnect (max_buffered)")
        fut = self._loop.create_future() if self._confirms else None
        self._buffer.append((fut, body, exchange, routing_key, props, mandatory))
        return fut

    async def publish(self, body: bytes, exchange: str = "", routing_key: str = "",
                      properties: Any = None, *, mandatory: bool = False,
                      timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        conn = ch._conn
        if len(conn._wbuf) > 256 * 1024 or not conn._writable.is_set():
            await conn.drain(timeout)
        fut = self.publish_nowait(body, exchange, routing_key, properties, mandatory=mandatory)
        if fut is not None:
            wait = self._robust.params.timeout if timeout is None else timeout
            try:
                async with asyncio.timeout(wait):
                    await fut
            except TimeoutError:
                raise errors.OperationTimeout(
                    f"no publisher confirm within {wait} s; the message may or may not be stored") from None

    async def drain(self, timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        await ch._conn.drain(timeout)

    async def wait_for_confirms(self, timeout: float | None = None) -> None:
        """Wait until every publish so far is confirmed (across reconnects); raise
        PublishNackedError if any was nacked since the previous call."""
        if not self._confirms:
            raise errors.ChannelError("wait_for_confirms() needs a channel in publisher-confirm mode")
        wait = self._robust.params.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(wait):
                while True:
                    open_futs = [p[0] for p in self._pending if not p[0].done()]
                    open_futs += [b[0] for b in self._buffer if b[0] is not None and not b[0].done()]
                    if not open_futs:
                        break
                    await asyncio.wait([open_futs[-1]])
        except TimeoutError:
            raise errors.OperationTimeout(f"publishes still unconfirmed after {wait} s") from None
        while self._pending and self._pending[0][0].done():
            self._settled(self._pending.popleft()[0])
        nacked, self._nacked = self._nacked, 0
        self._check()
        if nacked:
            raise errors.PublishNackedError(f"broker nacked or failed {nacked} publish(es)", 0, "NACK")

    # ------------------------------------------------------------------ consume
    async def basic_consume(self, queue: str, callback: ConsumerCallback, *, consumer_tag: str = "",
                            no_ack: bool = False, exclusive: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            on_cancel: CancelCallback | None = None, timeout: float | None = None) -> str:
        ch = await self._live(timeout)
        tag = consumer_tag or f"mmate.robust.{next(_tags)}"
        rec = _ConsumerRecord(queue, callback, no_ack, exclusive, arguments, on_cancel)
        self._consumers[tag] = rec
        try:
            await ch.basic_consume(queue, self._wrap(callback), consumer_tag=tag, no_ack=no_ack,
                                   exclusive=exclusive, arguments=arguments,
                                   on_cancel=self._cancelled_by_broker(tag), timeout=timeout)
        except BaseException:
            self._consumers.pop(tag, None)
            raise
        return tag

    async def basic_cancel(self, consumer_tag: str, *, timeout: float | None = None) -> None:
        self._consumers.pop(consumer_tag, None)
        ch = self._ch
        if ch is not None and ch.is_open and self._robust.is_connected:
            await ch.basic_cancel(consumer_tag, timeout=timeout)

    async def basic_get(self, queue: str, *, no_ack: bool = False, timeout: float | None = None) -> Any:
        ch = await self._live(timeout)
        d = await ch.basic_get(queue, no_ack=no_ack, timeout=timeout)
        if d is not None and self._tag_base:
            d.delivery_tag += self._tag_base
        return d

    def _current(self, delivery_tag: int) -> Any:
        """The live channel if ``delivery_tag`` belongs to it, else None (a stale tag from before a
        reconnect: the broker has requeued that message already)."""
        self._check()
        ch = self._ch
        if (delivery_tag >> _GEN_SHIFT) != self._generation - 1 or ch is None or not ch.is_open:
            self._robust.stats.stale_acks_dropped += 1
            log.debug("dropping settle of delivery tag %d from before a reconnect", delivery_tag)
            return None
        return ch

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> bool | None:
        """Ack; returns False when the tag is from before a reconnect (dropped: the broker
        redelivers that message), None otherwise (as a plain channel)."""
        ch = self._current(delivery_tag)
        if ch is None:
            return False
        ch.basic_ack(delivery_tag & _TAG_MASK, multiple)
        return None

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> bool | None:
        """Nack; False when the tag was dropped as stale (see ``basic_ack``), else None."""
        ch = self._current(delivery_tag)
        if ch is None:
            return False
        ch.basic_nack(delivery_tag & _TAG_MASK, multiple, requeue)
        return None

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> bool | None:
        """Reject; False when the tag was dropped as stale (see ``basic_ack``), else None."""
        ch = self._current(delivery_tag)
        if ch is None:
            return False
        ch.basic_reject(delivery_tag & _TAG_MASK, requeue)
        return None

    async def close(self, timeout: float | None = None) -> None:
        """Close for good (not re-opened on reconnect)."""
        if self._closed_exc is not None:
            return
        self._robust._forget(self)
        self._link_lost()
        exc = errors.ChannelClosedError("channel closed by client", 200, "Normal shutdown")
        ch = self._ch
        if ch is not None and ch.is_open and self._robust.is_connected:
            await ch.close(timeout)
        self._fail_everything(exc)
        self._closed_exc = exc


async def connect_robust(url: str | ConnectionParameters, *, policy: RecoveryPolicy | None = None,
                         timeout: float | None = None, loop: asyncio.AbstractEventLoop | None = None,
                         **overrides: Any) -> RobustConnection:
    """Connect (the first connect fails as :func:`connect` does) and keep the connection alive."""
    params = parse_url(url) if isinstance(url, str) else url
    for key, value in overrides.items():
        if not hasattr(params, key):
            raise TypeError(f"connect_robust() got an unknown option {key!r}")
        setattr(params, key, value)
    robust = RobustConnection(params, policy or RecoveryPolicy(), loop or asyncio.get_running_loop())
    await robust._start(timeout)
    return robust
