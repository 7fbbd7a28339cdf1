"""RobustChannel: a channel that outlives the AMQP channels under it (the connection side is in
``robust``).

One mechanism (``_restore``) reopens it in two situations:

- after a reconnect: RobustConnection restores every channel on the new connection, re-declaring
  the exchanges, queues and bindings declared through it;
- after a channel-level error on a live connection (the broker refused a call with 404, 406, ...
  and closed only this channel): it heals itself on the same connection.

Either way it restores publisher-confirm mode, QoS and its consumers (same tags and callbacks) and
re-sends the publishes still unconfirmed. Meanwhile ``is_open`` stays True, awaited calls wait
(bounded by the policy's ``wait_timeout``) and ``publish_nowait`` buffers (sent in order once the
channel is live again). Only the refused call fails, with the broker's named error:

- a refused declare/bind/...: that call raises; calls pipelined behind it, which the broker never
  processed, are sent again on the reopened channel; no later call re-raises an old error;
- a publish to a missing exchange (404 ``no exchange 'X'``): the unconfirmed publishes to X fail
  with the 404, the other unconfirmed ones are re-sent;
- any other refused publish (e.g. a 406 for a bad ``expiration`` in pre-encoded properties): the
  broker does not say which publish it was, so every unconfirmed publish of the channel fails with
  that error and a message saying its fate is unknown (it may or may not have been stored);
- without publisher confirms nothing is tracked: publishes sent after the refused one, before the
  broker's close arrived, were discarded by the broker (logged; use confirms to have them re-sent).

A nacked publish fails to its caller (PublishNackedError: not stored, publish it again) and the
channel is replaced by a fresh one on the same connection (at most once a second; the unconfirmed
publishes are re-sent on it): RabbitMQ 3.10 nacks every later publish to a quorum queue on a channel
that published to it while the queue had no leader (a node failure, a failover), a fresh channel works.
Publishes a reconnect sends (unconfirmed ones re-sent, ones buffered while disconnected) are the
exception: a quorum queue nacks them while it elects a new leader, so with
``RecoveryPolicy.resend_nacked`` (default) such a nacked one is sent again on the replaced channel
until ``wait_timeout`` is over, and only then fails (publishes re-sent or buffered by a channel heal
or replacement on a live connection are not: their nack fails them at once).

A consumer that cannot be restored (its queue is gone: 404; exclusive to another connection: 405;
403) is dropped and its ``on_cancel`` called once the channel is live; the rest are restored. At a
reconnect, recorded topology the broker now refuses (a binding to an exchange deleted meanwhile: 404;
a queue re-declared by someone else with other arguments: 406) is dropped from the record, logged and
counted (``RecoveryStats.topology_dropped``); it does not fail the reconnect.
Delivery tags carry the generation of the underlying channel (generation << 40): a settle of a
delivery from an earlier channel is dropped (the broker redelivers that message) and reported:
``basic_ack``/``basic_nack``/``basic_reject`` return False then, None otherwise.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mmate_fast import errors
from mmate_fast._checks import publish_names
from mmate_fast._ext import load
from mmate_fast._transport import CancelCallback, ConsumerCallback, QueueDeclareOk, ReturnCallback
from mmate_fast._transport.properties import encode_properties

if TYPE_CHECKING:
    from mmate_fast.amqp.connection import Connection
    from mmate_fast.amqp.robust import RobustConnection

_EMPTY_PROPERTIES: bytes = load("frames").encode_properties(None)

log = logging.getLogger("mmate_fast.amqp.recovery")

_GEN_SHIFT = 40
_TAG_MASK = (1 << _GEN_SHIFT) - 1
_tags = itertools.count(1)
#: a call the broker never processed (closed by an earlier call) is sent again at most this often
_RPC_ATTEMPTS = 3
#: consumer restores that fail this way drop the consumer instead of failing the restore
_CONSUMER_GONE = (errors.NotFoundError, errors.ResourceLockedError, errors.AccessRefusedError)
#: topology a reconnect cannot restore this way is dropped from the record (405, an exclusive queue
#: the broker still holds for our old connection, fails the attempt instead: it is retried)
_TOPOLOGY_STALE = (errors.NotFoundError, errors.PreconditionFailedError, errors.AccessRefusedError)
_NO_EXCHANGE = re.compile(r"no exchange '(.*)' in vhost '")
_BASIC_PUBLISH = (60, 40)
#: seconds between two replacements of a channel after nacks
_NACK_REPLACE_INTERVAL = 1.0

T = TypeVar("T")
#: (confirm future or None, body, exchange, routing key, encoded properties, mandatory, what the
#: confirm future resolves with)
_Publish = tuple["asyncio.Future[Any] | None", Any, str, str, bytes, bool, Any]


class _Guarded(asyncio.Future[Any]):
    """The internal confirm future of a publish sent by a reconnect (``_send_guarded``): a nack of it
    is not the caller's (not counted by ``wait_for_confirms``) unless it is final."""


def _copy(exc: errors.ChannelError, message: str | None = None) -> errors.ChannelError:
    return type(exc)(message or str(exc), exc.reply_code, exc.reply_text, exc.class_id, exc.method_id)


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


class _ShiftedCallback:
    """A consumer callback on a later generation, called as a callback: its deliveries get the
    generation's tag base (the subclasses add the compiled hook that keeps it on the fast path)."""

    __slots__ = ("callback", "tag_base")

    def __init__(self, callback: Any, tag_base: int) -> None:
        self.callback = callback
        self.tag_base = tag_base

    def __call__(self, delivery: Any) -> Any:
        delivery.delivery_tag += self.tag_base
        return self.callback(delivery)


class _Shifted(_ShiftedCallback):
    """A consumer callback with a ``channel_hook`` (the subscription's compiled step) on a later
    generation: the AMQP Channel registers its hook with ``tag_base`` (the frame reader shifts the
    tag, ``Acks.shifted`` unshifts the acks), so it stays on the fast path."""

    __slots__ = ()

    def channel_hook(self, ack: Any) -> Any:
        return self.callback.channel_hook(ack)


class _ShiftedNoAck(_ShiftedCallback):
    """A no-ack consumer callback with a ``no_ack_hook`` (the bridge's compiled reply step) on a
    later generation: the AMQP Channel registers its hook, which sees the live channel's own tags (a
    no-ack delivery's tag is only settled there, never by its consumer), so it stays on the fast
    path."""

    __slots__ = ()

    def no_ack_hook(self, settle: Any) -> Any:
        return self.callback.no_ack_hook(settle)


class RobustChannel:
    """A channel that is reopened and restored after a reconnect or a channel error (see the module
    docstring). Create it with ``await robust_connection.channel()``."""

    def __init__(self, robust: RobustConnection, publisher_confirms: bool) -> None:
        self._robust = robust
        self._loop = robust.loop
        self._confirms = publisher_confirms
        #: the current underlying Channel (closed while it is being reopened)
        self._ch: Any = None
        #: the underlying Channel while this one is live, else None (the publish fast path)
        self._live_ch: Any = None
        self._ready = asyncio.Event()
        self._generation = 0
        self._tag_base = 0
        self._topology: dict[tuple[Any, ...], tuple[str, tuple[Any, ...], dict[str, Any]]] = {}
        self._qos: tuple[int, int, bool] | None = None
        self._consumers: dict[str, _ConsumerRecord] = {}
        #: consumers that could not be restored; told (on_cancel) once the channel is live
        self._dropped: list[tuple[str, _ConsumerRecord]] = []
        #: confirm mode: publishes sent and not yet settled (re-sent on a new channel)
        self._pending: deque[_Publish] = deque()
        #: publishes made while not live (sent by _go_live)
        self._buffer: deque[_Publish] = deque()
        self._nacked = 0
        self._closed_exc: BaseException | None = None
        self._closing = False
        self._restoring = False
        self._healing: asyncio.Task[None] | None = None
        self._heal_error: BaseException | None = None
        self._replaced_at = -_NACK_REPLACE_INTERVAL
        #: recovery publishes nacked, to send again (publish, deadline)
        self._retry: list[tuple[_Publish, float]] = []
        #: from a lost connection until live again: what the recovery sends is guarded (resend_nacked)
        self._link_recovery = False
        self._replacing: asyncio.TimerHandle | None = None
        self.on_return: ReturnCallback | None = None
        self.channel_id = 0

    def __repr__(self) -> str:
        return (f"<RobustChannel {self.channel_id} generation={self._generation} "
                f"confirms={self._confirms} {'open' if self.is_open else 'closed'}>")

    # ------------------------------------------------------------------ state
    @property
    def is_open(self) -> bool:
        """True until closed by the user or recovery gave up (also while being reopened)."""
        return self._closed_exc is None

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

    async def _live(self, timeout: float | None = None) -> Any:
        """The live underlying channel, waiting (bounded) while it is reconnected or reopened."""
        ch = self._live_ch
        if ch is not None and ch._closed_exc is None:
            return ch
        self._check()
        robust = self._robust
        wait = robust.policy.wait_timeout if timeout is None else timeout
        deadline = self._loop.time() + wait
        while True:
            await robust.wait_connected(max(0.0, deadline - self._loop.time()))
            self._check()
            ch = self._live_ch
            if ch is not None and ch._closed_exc is None:
                return ch
            self._ready.clear()  # not live: wait for the next _go_live
            try:
                async with asyncio.timeout(max(0.0, deadline - self._loop.time())):
                    await self._ready.wait()
            except TimeoutError:
                why = f" (last attempt: {self._heal_error})" if self._heal_error is not None else ""
                raise errors.OperationTimeout(
                    f"channel {self.channel_id} is still being reopened after a channel error, "
                    f"{wait} s later{why}") from None

    async def _call(self, call: Callable[[Any], Awaitable[T]], timeout: float | None) -> T:
        """Run ``call(channel)`` on the live channel. If the broker closed the channel for another
        call before processing this one, run it again once the channel is reopened."""
        for attempt in range(1, _RPC_ATTEMPTS + 1):
            ch = await self._live(timeout)
            try:
                return await call(ch)
            except errors.ChannelClosedError as exc:
                if exc is ch._closed_exc or ch.is_open or attempt == _RPC_ATTEMPTS:
                    raise  # refused (this call closed the channel), or not about the channel
                log.debug("call not processed by the broker (channel closed for an earlier one); "
                          "retrying on the reopened channel")
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ (re)open
    async def _restore(self, conn: Connection, *, redeclare: bool = True) -> None:
        """Open a channel on ``conn`` and restore this one on it (see the module docstring)."""
        self._restoring = True
        done: set[tuple[Any, ...]] = set()
        renamed: dict[str, str] = {}
        try:
            while True:
                ch = await conn.channel()
                try:
                    ch._retain_waiters = True
                    ch.on_return = self._on_return
                    ch.on_close = self._on_channel_closed
                    ch.on_nack = self._on_nacked
                    if self._confirms:
                        await ch.confirm_select()
                    if redeclare and not await self._redeclare(ch, done, renamed):
                        continue  # a stale record was dropped; its refusal closed the channel
                    if self._qos is not None:
                        await ch.basic_qos(self._qos[0], self._qos[1], global_=self._qos[2])
                    self._generation += 1
                    self._tag_base = (self._generation - 1) << _GEN_SHIFT
                    # current before its consumers restart: deliveries that arrive in the same read
                    # as consume-ok are settled against this channel (not dropped as stale)
                    self._ch = ch
                    self.channel_id = ch.channel_id
                    restored = await self._restart_consumers(ch)
                except BaseException:
                    self._discard(ch)
                    raise
                if restored:
                    break
                redeclare = False  # done on this connection; the failed consume closed the channel
            self._resend(ch)
        finally:
            self._restoring = False

    async def _redeclare(self, ch: Any, done: set[tuple[Any, ...]], renamed: dict[str, str]) -> bool:
        """Declare the recorded topology not ``done`` yet; False when a stale record was dropped
        (its refusal closed the channel). Server-named queues get new names (``renamed``)."""
        for key, (method, args, kwargs) in list(self._topology.items()):
            if key in done:
                continue
            if method == "queue_bind" and args[0] in renamed:
                del self._topology[key]
                args = (renamed[args[0]], *args[1:])
                key = ("qb", *args[:3])
                self._topology[key] = (method, args, kwargs)
            try:
                if method == "queue_declare":
                    key = await self._redeclare_queue(ch, key, args[0], kwargs, renamed)
                else:
                    await getattr(ch, method)(*args, **kwargs)
            except _TOPOLOGY_STALE as exc:
                log.error("%s %s cannot be restored after the reconnect (%s): dropped from what "
                          "reconnects restore", method.replace("_", "."), args[:3], exc)
                self._topology.pop(key, None)
                self._robust.stats.topology_dropped += 1
                return False
            done.add(key)
        return True

    async def _redeclare_queue(self, ch: Any, key: tuple[Any, ...], queue: str, kwargs: dict[str, Any],
                               renamed: dict[str, str]) -> tuple[Any, ...]:
        server_named = kwargs.pop("_server_named", False)
        try:
            ok = await ch.queue_declare("" if server_named else queue, **kwargs)
        finally:
            if server_named:
                kwargs["_server_named"] = True
        if not server_named or ok.queue == queue:
            return key
        renamed[queue] = ok.queue
        del self._topology[key]
        key = ("q", ok.queue)
        self._topology[key] = ("queue_declare", (ok.queue,), kwargs)
        for rec in self._consumers.values():
            if rec.queue == queue:
                rec.queue = ok.queue
        return key

    async def _restart_consumers(self, ch: Any) -> bool:
        """Re-consume every consumer; False when one could not be (dropped; the channel closed)."""
        for tag, rec in list(self._consumers.items()):
            try:
                await ch.basic_consume(rec.queue, self._wrap(rec.callback), consumer_tag=tag,
                                       no_ack=rec.no_ack, exclusive=rec.exclusive, arguments=rec.arguments,
                                       on_cancel=self._cancelled_by_broker(tag, ch))
            except _CONSUMER_GONE as exc:
                log.error("consumer %r of queue %r cannot be restored (%s): dropped; its on_cancel is "
                          "called", tag, rec.queue, exc)
                self._consumers.pop(tag, None)
                self._dropped.append((tag, rec))
                self._robust.stats.consumers_dropped += 1
                return False
        return True

    def _resend(self, ch: Any) -> None:
        """Send the unconfirmed publishes again (their futures stay the callers')."""
        if not self._pending:
            return
        resend = [p for p in self._pending if p[0] is not None and not p[0].done()]
        self._pending.clear()
        guard = self._link_recovery and self._robust.policy.resend_nacked
        deadline = self._loop.time() + self._robust.policy.wait_timeout
        for p in resend:
            if guard:
                self._send_guarded(ch, p, deadline)
                continue
            ch._publish_tracked(p[1], p[2], p[3], p[4], p[5], p[0], p[6])
            self._pending.append(p)
        self._robust.stats.republished += len(resend)
        if resend:
            log.warning("re-sent %d unconfirmed publish(es) on channel %d", len(resend), ch.channel_id)

    def _send_guarded(self, ch: Any, p: _Publish, deadline: float) -> None:
        """Send a recovery publish with an internal confirm future: a nack before ``deadline`` sends
        it again (on the channel that replaces this one), anything else settles the caller's."""
        caller = p[0]
        if caller is None or caller.done():
            return
        inner: asyncio.Future[Any] = _Guarded(loop=self._loop)
        ch._publish_tracked(p[1], p[2], p[3], p[4], p[5], inner, p[6])
        self._pending.append((inner, *p[1:]))
        inner.add_done_callback(lambda f: self._guarded_settled(f, p, deadline))

    def _guarded_settled(self, inner: asyncio.Future[Any], p: _Publish, deadline: float) -> None:
        caller = p[0]
        assert caller is not None
        if caller.done():
            return
        if inner.cancelled():
            caller.cancel()
            return
        exc = inner.exception()
        if exc is None:
            caller.set_result(inner.result())
        elif (isinstance(exc, errors.PublishNackedError) and self._closed_exc is None
              and self._loop.time() < deadline):
            self._retry.append((p, deadline))
            self._robust.stats.nacked_resent += 1
            self._loop.call_later(_NACK_REPLACE_INTERVAL, self._flush_retries)  # if no replacement comes
        else:
            caller.set_exception(exc)

    def _flush_retries(self, ch: Any = None) -> None:
        """Send the nacked recovery publishes again on ``ch`` (default: the live channel; none: its
        go-live does)."""
        ch = ch if ch is not None else self._live_ch
        if not self._retry or ch is None or ch._closed_exc is not None:
            return
        retry, self._retry = self._retry, []
        for p, deadline in retry:
            self._send_guarded(ch, p, deadline)

    def _discard(self, ch: Any) -> None:
        """Drop a channel a failed restore left open (closed in the background, quietly)."""
        ch.on_close = None
        if ch.is_open and not ch._conn.is_closed:
            task = self._loop.create_task(ch.close(timeout=5))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _go_live(self) -> None:
        """The restored channel takes traffic: buffered publishes first, then the fast paths."""
        ch = self._ch
        if self._closed_exc is not None or ch is None or not ch.is_open:
            return
        self._flush_retries(ch)
        self._flush_buffered()
        self._link_recovery = False
        self._live_ch = ch
        if not self._confirms:
            # hot path: without confirms there is nothing to track, so publish straight into the live
            # channel (one call less per message); switched back off the moment it goes offline
            self.publish_nowait = ch.publish_nowait  # type: ignore[method-assign]
        if self._generation == 1:
            # first channel: delivery tags are not shifted and none can be stale yet, so acks go
            # straight to the channel until it goes offline (later generations check every tag)
            self.basic_ack = ch.basic_ack  # type: ignore[method-assign]
        self._ready.set()
        dropped, self._dropped = self._dropped, []
        for tag, rec in dropped:
            if rec.on_cancel is not None:
                try:
                    rec.on_cancel(tag)
                except Exception:
                    log.exception("on_cancel callback failed")

    def _reconnected(self) -> None:
        """RobustConnection finished a reconnect (a heal that started since goes live by itself)."""
        if self._healing is None or self._healing.done():
            self._go_live()

    def _offline(self) -> None:
        """Route publishes through the buffer and acks through the stale-tag check again."""
        self._live_ch = None
        self._ready.clear()
        self.__dict__.pop("publish_nowait", None)
        self.__dict__.pop("basic_ack", None)

    def _link_lost(self) -> None:
        """The connection dropped (RobustConnection restores this channel once reconnected)."""
        self._link_recovery = True
        self._offline()
        if self._healing is not None and not self._healing.done():
            self._healing.cancel()

    # ------------------------------------------------------------------ channel errors: heal
    def _on_channel_closed(self, ch: Any, exc: BaseException) -> None:
        if ch is not self._ch:
            return
        self._offline()
        if self._restoring or self._closing or self._closed_exc is not None:
            return  # a restore handles its own failures; a close is for good
        conn: Connection = ch._conn
        if isinstance(exc, errors.AMQPConnectionError) or conn.is_closed or conn is not self._robust._conn:
            return  # the link: RobustConnection recovers
        self._settle_refused(exc)
        log.warning("channel %d closed by the broker (%s); reopening it", ch.channel_id, exc)
        self._robust._note(f"channel {ch.channel_id} closed: {exc}")
        self._healing = self._loop.create_task(self._heal(conn))

    def _on_nacked(self, ch: Any) -> None:
        """The broker nacked a publish on ``ch``: replace the channel (see the module docstring),
        at once or ``_NACK_REPLACE_INTERVAL`` after the previous replacement."""
        if ch is not self._ch or self._replacing is not None:
            return
        wait = self._replaced_at + _NACK_REPLACE_INTERVAL - self._loop.time()
        self._replacing = self._loop.call_later(max(0.0, wait), self._replace, ch)

    def _replace(self, ch: Any) -> None:
        self._replacing = None
        conn: Connection = ch._conn
        if (ch is not self._ch or not ch.is_open or self._restoring or self._closing
                or self._closed_exc is not None or conn.is_closed or conn is not self._robust._conn
                or (self._healing is not None and not self._healing.done())):
            return
        self._replaced_at = self._loop.time()
        self._offline()
        ch.on_close = None
        ch.on_nack = None
        log.warning("broker nacked a publish on channel %d; replacing the channel (a quorum queue that "
                    "changed leaders keeps nacking on it)", ch.channel_id)
        self._robust._note(f"channel {ch.channel_id} replaced after a nack")
        self._robust.stats.nack_replacements += 1
        self._healing = self._loop.create_task(self._replace_channel(ch, conn))

    async def _replace_channel(self, old: Any, conn: Connection) -> None:
        try:
            await old.close(timeout=5)  # its unconfirmed publishes stay pending: re-sent on the new one
        except Exception as exc:
            log.debug("closing the nacked channel failed: %s", exc)
        await self._heal(conn)

    def _settle_refused(self, exc: BaseException) -> None:
        """Fail the unconfirmed publishes the broker refused; the rest stay pending (re-sent)."""
        if not isinstance(exc, errors.ChannelError) or (exc.class_id, exc.method_id) != _BASIC_PUBLISH:
            return  # a refused declare, ack, ...: every unconfirmed publish is simply re-sent
        if not self._confirms:
            log.error("channel %d: the broker refused a publish (%s); publishes sent on it after that one "
                      "were discarded (publisher confirms would have re-sent them)", self.channel_id, exc)
            return
        match = _NO_EXCHANGE.search(exc.reply_text) if exc.reply_code == 404 else None
        unsettled = [p for p in self._pending if p[0] is not None and not p[0].done()]
        keep: deque[_Publish] = deque()
        for p in self._pending:
            fut = p[0]
            assert fut is not None
            if fut.done():
                self._settled(fut)
            elif match is not None and p[2] != match.group(1):
                keep.append(p)
            else:
                fut.set_exception(_copy(exc) if match is not None else _copy(exc, (
                    f"{exc}; the broker did not say which of the {len(unsettled)} unconfirmed publishes "
                    f"on channel {self.channel_id} it refused, so this one may or may not have been "
                    "stored: publish it again if it must arrive")))
                self._nacked += 1
        self._pending = keep

    async def _heal(self, conn: Connection) -> None:
        attempt = 0
        while self._closed_exc is None and not conn.is_closed and conn is self._robust._conn:
            attempt += 1
            try:
                await self._restore(conn, redeclare=False)
            except Exception as exc:
                self._heal_error = exc
                if conn.is_closed:
                    return  # RobustConnection takes over
                log.warning("reopening channel %d failed (attempt %d): %s", self.channel_id, attempt, exc)
                await asyncio.sleep(self._robust.policy.delay(attempt))
                continue
            self._heal_error = None
            self._robust.stats.channel_reopens += 1
            self._robust._note(f"channel {self.channel_id} reopened")
            log.warning("channel %d reopened after a channel error (%d consumer(s) restored)",
                        self.channel_id, len(self._consumers))
            if self._robust.is_connected:
                self._go_live()
            return

    # ------------------------------------------------------------------ helpers
    def _flush_buffered(self) -> None:
        """Send what was published while not live."""
        buf, self._buffer = self._buffer, deque()
        guard = self._link_recovery and self._confirms and self._robust.policy.resend_nacked
        deadline = self._loop.time() + self._robust.policy.wait_timeout
        for fut, body, exchange, routing_key, props, mandatory, value in buf:
            if fut is not None and fut.done():
                continue
            try:
                if guard and fut is not None:
                    self._send_guarded(self._ch, (fut, body, exchange, routing_key, props, mandatory, value),
                                       deadline)
                    continue
                self._send(body, exchange, routing_key, props, mandatory, fut, value)
            except errors.MmateError as exc:
                if fut is None:
                    log.error("a publish buffered on channel %d could not be sent: %s", self.channel_id, exc)
                elif not fut.done():
                    fut.set_exception(exc)
        self._robust.stats.buffered_sent += len(buf)

    def _wrap(self, callback: ConsumerCallback) -> ConsumerCallback:
        base = self._tag_base
        if base == 0:
            return callback
        if getattr(type(callback), "channel_hook", None) is not None:
            return _Shifted(callback, base)  # stays hooked on the frame reader, tags shifted there
        if getattr(type(callback), "no_ack_hook", None) is not None:
            return _ShiftedNoAck(callback, base)  # a no-ack consumer's hook stays on the frame reader
        if asyncio.iscoroutinefunction(callback):
            async def shifted_async(delivery: Any) -> None:
                delivery.delivery_tag += base
                await callback(delivery)

            return shifted_async

        def shifted(delivery: Any) -> Any:
            delivery.delivery_tag += base
            return callback(delivery)

        return shifted

    def _cancelled_by_broker(self, tag: str, ch: Any) -> CancelCallback:
        def cancelled(consumer_tag: str) -> None:
            if not ch.is_open:
                return  # the channel closed under it: restored (or dropped) with the channel
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
        self._link_lost()
        self._ready.set()  # wake waiters: they see _closed_exc
        for pending in self._pending:
            if pending[0] is not None and not pending[0].done():
                pending[0].set_exception(exc)
        self._pending.clear()
        for buffered in self._buffer:
            waiter = buffered[0]
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
        self._buffer.clear()
        for p, _ in self._retry:
            if p[0] is not None and not p[0].done():
                p[0].set_exception(exc)
        self._retry.clear()
        self._dropped.clear()

    # ------------------------------------------------------------------ topology (recorded)
    async def exchange_declare(self, exchange: str, exchange_type: str = "direct", *, passive: bool = False,
                               durable: bool = False, auto_delete: bool = False, internal: bool = False,
                               arguments: Mapping[str, Any] | None = None,
                               timeout: float | None = None) -> None:
        kwargs = {"passive": passive, "durable": durable, "auto_delete": auto_delete, "internal": internal,
                  "arguments": dict(arguments or {})}
        await self._call(lambda ch: ch.exchange_declare(exchange, exchange_type, timeout=timeout, **kwargs),
                         timeout)
        if not passive:
            self._topology[("x", exchange)] = ("exchange_declare", (exchange, exchange_type), kwargs)

    async def exchange_delete(self, exchange: str, *, if_unused: bool = False,
                              timeout: float | None = None) -> None:
        await self._call(lambda ch: ch.exchange_delete(exchange, if_unused=if_unused, timeout=timeout),
                         timeout)
        for key in [k for k in self._topology if exchange in k[1:3] and k[0] in ("x", "xb", "qb")]:
            del self._topology[key]

    async def exchange_bind(self, destination: str, source: str, routing_key: str = "",
                            arguments: Mapping[str, Any] | None = None, timeout: float | None = None) -> None:
        await self._call(lambda ch: ch.exchange_bind(destination, source, routing_key, arguments,
                                                     timeout=timeout), timeout)
        self._topology[("xb", destination, source, routing_key)] = (
            "exchange_bind", (destination, source, routing_key, dict(arguments or {})), {})

    async def exchange_unbind(self, destination: str, source: str, routing_key: str = "",
                              arguments: Mapping[str, Any] | None = None,
                              timeout: float | None = None) -> None:
        await self._call(lambda ch: ch.exchange_unbind(destination, source, routing_key, arguments,
                                                       timeout=timeout), timeout)
        self._topology.pop(("xb", destination, source, routing_key), None)

    async def queue_declare(self, queue: str = "", *, passive: bool = False, durable: bool = False,
                            exclusive: bool = False, auto_delete: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            timeout: float | None = None) -> QueueDeclareOk:
        kwargs: dict[str, Any] = {"durable": durable, "exclusive": exclusive, "auto_delete": auto_delete,
                                  "arguments": dict(arguments or {})}
        ok: QueueDeclareOk = await self._call(
            lambda ch: ch.queue_declare(queue, passive=passive, timeout=timeout, **kwargs), timeout)
        if not passive:
            if not queue:
                kwargs["_server_named"] = True
            self._topology[("q", ok.queue)] = ("queue_declare", (ok.queue,), kwargs)
        return ok

    async def queue_delete(self, queue: str, *, if_unused: bool = False, if_empty: bool = False,
                           timeout: float | None = None) -> int:
        count = await self._call(lambda ch: ch.queue_delete(queue, if_unused=if_unused, if_empty=if_empty,
                                                            timeout=timeout), timeout)
        for key in [k for k in self._topology if k[0] in ("q", "qb") and k[1] == queue]:
            del self._topology[key]
        for tag in [t for t, rec in self._consumers.items() if rec.queue == queue]:
            self._consumers.pop(tag, None)
        return int(count)

    async def queue_bind(self, queue: str, exchange: str, routing_key: str = "",
                         arguments: Mapping[str, Any] | None = None, timeout: float | None = None) -> None:
        await self._call(lambda ch: ch.queue_bind(queue, exchange, routing_key, arguments, timeout=timeout),
                         timeout)
        self._topology[("qb", queue, exchange, routing_key)] = (
            "queue_bind", (queue, exchange, routing_key, dict(arguments or {})), {})

    async def queue_unbind(self, queue: str, exchange: str, routing_key: str = "",
                           arguments: Mapping[str, Any] | None = None, timeout: float | None = None) -> None:
        await self._call(lambda ch: ch.queue_unbind(queue, exchange, routing_key, arguments, timeout=timeout),
                         timeout)
        self._topology.pop(("qb", queue, exchange, routing_key), None)

    async def queue_purge(self, queue: str, *, timeout: float | None = None) -> int:
        return int(await self._call(lambda ch: ch.queue_purge(queue, timeout=timeout), timeout))

    async def basic_qos(self, prefetch_count: int = 0, prefetch_size: int = 0, *, global_: bool = False,
                        timeout: float | None = None) -> None:
        await self._call(lambda ch: ch.basic_qos(prefetch_count, prefetch_size, global_=global_,
                                                 timeout=timeout), timeout)
        self._qos = (prefetch_count, prefetch_size, global_)

    async def confirm_select(self, *, timeout: float | None = None) -> None:
        await self._call(lambda ch: ch.confirm_select(timeout=timeout), timeout)
        self._confirms = True
        self.__dict__.pop("publish_nowait", None)  # confirms are tracked here: leave the direct path

    # ------------------------------------------------------------------ publish
    def _send(self, body: Any, exchange: str, routing_key: str, props: bytes, mandatory: bool,
              fut: asyncio.Future[Any] | None, value: Any = True) -> asyncio.Future[Any] | None:
        ch = self._ch
        if self._confirms:
            if fut is None:
                fut = self._loop.create_future()
            ch._publish_tracked(body, exchange, routing_key, props, mandatory, fut, value)
            pending = self._pending
            pending.append((fut, body, exchange, routing_key, props, mandatory, value))
            while pending[0][0].done():  # type: ignore[union-attr]
                self._settled(pending.popleft()[0])  # type: ignore[arg-type]
            return fut
        ch.publish_nowait(body, exchange, routing_key, props, mandatory=mandatory)
        return None

    def _settled(self, fut: asyncio.Future[bool]) -> None:
        if type(fut) is _Guarded:
            return  # a recovery publish's internal future: its caller's future tells
        if not fut.cancelled() and fut.exception() is not None:
            self._nacked += 1

    def publish_sink(self) -> Any | None:
        """The live channel's ``publish_sink()`` (no confirms, nothing buffered), else None: the
        publisher's one-call path writes there until that channel closes."""
        ch = self._live_ch
        if ch is None or ch._closed_exc is not None or self._confirms or self._buffer:
            return None
        return ch.publish_sink()

    def publish_nowait(self, body: bytes, exchange: str = "", routing_key: str = "",
                       properties: Any = None, *, mandatory: bool = False,
                       confirm_value: Any = True) -> asyncio.Future[Any] | None:
        if properties is None:
            props = _EMPTY_PROPERTIES
        elif type(properties) is bytes:
            props = properties
        else:
            props = encode_properties(properties)
        ch = self._live_ch
        if ch is not None and ch._closed_exc is None:
            return self._send(body, exchange, routing_key, props, mandatory, None, confirm_value)
        return self._buffered(body, exchange, routing_key, props, mandatory, confirm_value)

    def _buffered(self, body: bytes, exchange: str, routing_key: str, props: bytes,
                  mandatory: bool, value: Any = True) -> asyncio.Future[Any] | None:
        """Keep a publish made while reconnecting or reopening (sent once live, in order)."""
        self._check()
        robust = self._robust
        if robust.policy.on_disconnect == "fail" and not robust.is_connected:
            raise errors.ConnectionClosedError(
                f"disconnected from {robust.params.safe_url()}; reconnecting (on_disconnect='fail')")
        if len(self._buffer) >= robust.policy.max_buffered:
            raise errors.ConnectionBlockedError(
                f"{len(self._buffer)} publishes already wait for channel {self.channel_id} to be "
                "reconnected or reopened (max_buffered)")
        publish_names(exchange, routing_key)
        fut = self._loop.create_future() if self._confirms else None
        self._buffer.append((fut, body, exchange, routing_key, props, mandatory, value))
        return fut

    async def publish(self, body: bytes, exchange: str = "", routing_key: str = "",
                      properties: Any = None, *, mandatory: bool = False,
                      timeout: float | None = None) -> None:
        ch = await self._live(timeout)
        conn: Connection = ch._conn
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
        """Wait until every publish so far is confirmed (across reconnects and reopens); raise
        PublishNackedError if any was nacked or refused since the previous call."""
        if not self._confirms:
            raise errors.ChannelError("wait_for_confirms() needs a channel in publisher-confirm mode")
        wait = self._robust.params.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(wait):
                while True:
                    open_futs = [p[0] for p in self._pending if p[0] is not None and not p[0].done()]
                    open_futs += [b[0] for b in self._buffer if b[0] is not None and not b[0].done()]
                    open_futs += [r[0][0] for r in self._retry if r[0][0] is not None and not r[0][0].done()]
                    if not open_futs:
                        break
                    await asyncio.wait([open_futs[-1]])
        except TimeoutError:
            raise errors.OperationTimeout(f"publishes still unconfirmed after {wait} s") from None
        while self._pending and self._pending[0][0] is not None and self._pending[0][0].done():
            self._settled(self._pending.popleft()[0])  # type: ignore[arg-type]
        nacked, self._nacked = self._nacked, 0
        self._check()
        if nacked:
            raise errors.PublishNackedError(f"broker nacked or failed {nacked} publish(es)", 0, "NACK")

    # ------------------------------------------------------------------ consume
    async def basic_consume(self, queue: str, callback: ConsumerCallback, *, consumer_tag: str = "",
                            no_ack: bool = False, exclusive: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            on_cancel: CancelCallback | None = None, timeout: float | None = None) -> str:
        tag = consumer_tag or f"mmate.robust.{next(_tags)}"
        await self._call(lambda ch: ch.basic_consume(
            queue, self._wrap(callback), consumer_tag=tag, no_ack=no_ack, exclusive=exclusive,
            arguments=arguments, on_cancel=self._cancelled_by_broker(tag, ch), timeout=timeout), timeout)
        self._consumers[tag] = _ConsumerRecord(queue, callback, no_ack, exclusive, arguments, on_cancel)
        return tag

    async def basic_cancel(self, consumer_tag: str, *, timeout: float | None = None) -> None:
        self._consumers.pop(consumer_tag, None)
        self._dropped = [d for d in self._dropped if d[0] != consumer_tag]
        ch = self._ch
        if ch is not None and ch.is_open and consumer_tag in ch._consumers:
            await ch.basic_cancel(consumer_tag, timeout=timeout)

    async def basic_get(self, queue: str, *, no_ack: bool = False, timeout: float | None = None) -> Any:
        d = await self._call(lambda ch: ch.basic_get(queue, no_ack=no_ack, timeout=timeout), timeout)
        if d is not None and self._tag_base:
            d.delivery_tag += self._tag_base
        return d

    def _current(self, delivery_tag: int) -> Any:
        """The underlying channel if ``delivery_tag`` belongs to it, else None (a stale tag from an
        earlier channel: the broker has requeued that message already)."""
        self._check()
        ch = self._ch
        if (delivery_tag >> _GEN_SHIFT) != self._generation - 1 or ch is None or not ch.is_open:
            self._robust.stats.stale_acks_dropped += 1
            log.debug("dropping settle of delivery tag %d from an earlier channel", delivery_tag)
            return None
        return ch

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> bool | None:
        """Ack; returns False when the tag is from an earlier channel (dropped: the broker
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
        """Close for good (not reopened)."""
        if self._closed_exc is not None:
            return
        self._closing = True
        self._robust._forget(self)
        self._link_lost()
        exc = errors.ChannelClosedError("channel closed by client", 200, "Normal shutdown")
        ch = self._ch
        if ch is not None and ch.is_open and self._robust.is_connected:
            await ch.close(timeout)
        self._fail_everything(exc)


__all__ = ["RobustChannel"]
