"""One AMQP channel: topology, QoS, publish (with confirms), consume, acks.

Synchronous AMQP methods are pipelined: each request is written at once and its expected reply
queued; RabbitMQ answers in order per channel. A broker channel.close fails the request that caused
it with the named error (404 -> NotFoundError, 406 -> PreconditionFailedError, ...), closes only
this channel and makes every later call raise the same error (``on_close`` is told, so a wrapper
can reopen it: RobustChannel and ChannelPool do). Requests pipelined behind the refused one were
not processed by the broker: they fail with a copy of that error whose message says so.

Arguments the broker would refuse (names over 255 bytes, bad properties, ...) raise
InvalidArgumentError before anything is written; the channel stays open (see ``_validate``).

Acks are coalesced: consecutive in-order acks within one loop turn leave as a single
``basic.ack(multiple=True)`` frame, written together with everything else in that turn.
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from pamqp import commands as spec

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast._transport import CancelCallback, ConsumerCallback, QueueDeclareOk, ReturnCallback
from mmate_fast._transport.properties import ENCODE_ERRORS, encode_properties
from mmate_fast.amqp._validate import build_method, publish_error, rpc_error

_frames = load("frames")
_pool = load("pool")
_wire = load("wire")

log = logging.getLogger("mmate_fast.amqp")

_Delivery = _frames.Delivery
_Confirm = _frames.Confirm
_MethodFrame = _frames.MethodFrame
_append_publish = _frames.append_publish
_append_nack = _frames.append_nack
_append_reject = _frames.append_reject
_EMPTY_PROPERTIES: bytes = _frames.encode_properties(None)
_KIND_DELIVER = _frames.Delivery.KIND_DELIVER
_KIND_GET_OK = _frames.Delivery.KIND_GET_OK

_tag_counter = itertools.count(1)
#: ``await publish()`` hands the queued bytes to the transport past this size, so the transport's
#: flow control (pause_writing) can push back on a fast publisher
_EAGER_FLUSH_BYTES = 256 * 1024


def _nack_error(tag: int) -> BaseException:
    return errors.PublishNackedError(f"broker nacked publish #{tag}: the message was not stored", 0,
                                     "NACK")


def _expire_confirm(fut: asyncio.Future[bool], wait: float, channel_id: int) -> None:
    if not fut.done():
        fut.set_exception(errors.OperationTimeout(
            f"no publisher confirm within {wait} s on channel {channel_id}; the message may or may not "
            "be stored"))


def _method_name(class_id: int, method_id: int) -> str:
    """``basic.publish`` for (60, 40); "" when unknown."""
    method: Any = spec.INDEX_MAPPING.get((class_id << 16) | method_id)
    return str(method.name).lower() if method is not None else ""


class _Rpc:
    __slots__ = ("expect", "future", "index", "what")

    def __init__(self, expect: tuple[type, ...], future: asyncio.Future[Any], what: str, index: int) -> None:
        self.expect = expect
        self.future = future
        self.what = what
        #: (class_id << 16) | method_id of the request, to tell whether a channel.close is about it
        self.index = index


class _Consumer:
    __slots__ = ("callback", "is_async", "no_ack", "on_cancel", "queue")

    def __init__(self, queue: str, callback: ConsumerCallback, on_cancel: CancelCallback | None,
                 no_ack: bool) -> None:
        self.queue = queue
        self.callback = callback
        self.is_async = inspect.iscoroutinefunction(callback)
        self.on_cancel = on_cancel
        self.no_ack = no_ack


class Channel:
    """An AMQP channel; obtain it with ``await connection.channel()``."""

    def __init__(self, connection: Any, channel_id: int) -> None:
        self._conn = connection
        self._loop: asyncio.AbstractEventLoop = connection.loop
        self.channel_id = channel_id
        self._rpcs: deque[_Rpc] = deque()
        self._consumers: dict[str, _Consumer] = {}
        self._confirms = False
        self._tracker = _pool.ConfirmTracker(_nack_error)
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._nacked_seen = 0
        self._open = False
        self._closed_exc: BaseException | None = None
        self._close_future: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.on_return: ReturnCallback | None = None
        #: called once with (channel, error) when the channel closes for any reason
        self.on_close: Callable[[Channel, BaseException], None] | None = None
        #: called with the channel when the broker nacks a publish (RobustChannel replaces the channel)
        self.on_nack: Callable[[Channel], None] | None = None
        self.flow_active = True
        #: set by RobustChannel: on close, leave confirm waiters pending (it settles or re-sends them)
        self._retain_waiters = False
        #: the publisher's one-call path into this channel (publish_sink); closed with the channel
        self._sink: Any = None
        #: settle bookkeeping, compiled (in-order acks of a loop turn coalesced: frames.Acks)
        self._acks = _frames.Acks(self, connection, channel_id)

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"<Channel {self.channel_id} {state} confirms={self._confirms}>"

    # ------------------------------------------------------------------ state
    @property
    def is_open(self) -> bool:
        return self._open and self._closed_exc is None

    @property
    def publisher_confirms(self) -> bool:
        return self._confirms

    @property
    def connection(self) -> Any:
        return self._conn

    def _raise_closed(self) -> None:
        exc = self._closed_exc
        if exc is None:
            exc = errors.ChannelClosedError(f"channel {self.channel_id} is not open")
        raise exc

    def _timeout(self, timeout: float | None) -> float:
        return self._conn.params.timeout if timeout is None else timeout

    # ------------------------------------------------------------------ RPC plumbing
    async def _rpc(self, method: Any, expect: tuple[type, ...], timeout: float | None,
                   what: str = "") -> Any:
        if self._closed_exc is not None:
            self._raise_closed()
        what = what or method.name.lower()
        try:
            frame = _frames.marshal_method(method, self.channel_id)
        except ENCODE_ERRORS as exc:
            raise rpc_error(exc, what) from None
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._rpcs.append(_Rpc(expect, fut, what, method.index))
        self._conn._write(frame)
        try:
            async with asyncio.timeout(self._timeout(timeout)):
                return await fut
        except TimeoutError:
            raise errors.OperationTimeout(
                f"{what} on channel {self.channel_id} got no answer within {self._timeout(timeout)} s"
            ) from None

    async def _open_channel(self, timeout: float | None) -> None:
        self._open = True
        await self._rpc(spec.Channel.Open(), (spec.Channel.OpenOk,), timeout, "channel.open")

    # ------------------------------------------------------------------ incoming frames
    def _on_frame(self, item: Any) -> None:
        t = type(item)
        if t is _Delivery:
            if item.kind == _KIND_DELIVER:
                consumer = self._consumers.get(item.consumer_tag)
                if consumer is None:
                    log.warning("delivery for unknown consumer %r on channel %d; rejecting with requeue",
                                item.consumer_tag, self.channel_id)
                    self.basic_reject(item.delivery_tag, True)
                    return
                if consumer.no_ack:
                    self._settle(item.delivery_tag, False)
                if consumer.is_async:
                    task = self._loop.create_task(self._run_async(consumer, item))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    try:
                        consumer.callback(item)
                    except Exception:
                        log.exception("consumer callback for queue %r failed (delivery tag %d left "
                                      "unacked)", consumer.queue, item.delivery_tag)
            elif item.kind == _KIND_GET_OK:
                self._resolve_rpc(item)
            else:
                self._on_return(item)
        elif t is _Confirm:
            tracker = self._tracker
            if item.nack:
                tracker.nack(item.delivery_tag, item.multiple)
                if self.on_nack is not None:
                    self.on_nack(self)
            else:
                tracker.ack(item.delivery_tag, item.multiple)
            if self._idle_waiters and tracker.outstanding() == 0:
                waiters, self._idle_waiters = self._idle_waiters, []
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        elif t is _MethodFrame:
            self._on_method(item.method)

    async def _run_async(self, consumer: _Consumer, delivery: Any) -> None:
        try:
            await consumer.callback(delivery)  # type: ignore[misc]
        except Exception:
            log.exception("consumer callback for queue %r failed (delivery tag %d left unacked)",
                          consumer.queue, delivery.delivery_tag)

    def _on_return(self, delivery: Any) -> None:
        if self._confirms:
            self._tracker.mark_returned(errors.PublishReturnedError(
                f"message to exchange {delivery.exchange!r} with routing key {delivery.routing_key!r} "
                f"was returned: {delivery.reply_code} {delivery.reply_text}", delivery.reply_code,
                delivery.reply_text))
        cb = self.on_return
        if cb is None:
            log.warning("unroutable message returned (%d %s, exchange %r, routing key %r); set "
                        "channel.on_return to handle it", delivery.reply_code, delivery.reply_text,
                        delivery.exchange, delivery.routing_key)
            return
        try:
            cb(delivery)
        except Exception:
            log.exception("on_return callback failed")

    def _on_method(self, m: Any) -> None:
        if isinstance(m, spec.Channel.Close):
            self._on_remote_close(m)
        elif isinstance(m, spec.Basic.Cancel):
            tag = m.consumer_tag or ""
            consumer = self._forget_consumer(tag)
            log.warning("broker cancelled consumer %r on channel %d (queue deleted or failed over)",
                        tag, self.channel_id)
            if consumer is not None and consumer.on_cancel is not None:
                try:
                    consumer.on_cancel(tag)
                except Exception:
                    log.exception("on_cancel callback failed")
        elif isinstance(m, spec.Channel.Flow):
            self.flow_active = bool(m.active)
            self._conn._send_method(self.channel_id, spec.Channel.FlowOk(active=m.active))
        elif isinstance(m, spec.Channel.CloseOk):
            if self._close_future is not None and not self._close_future.done():
                self._close_future.set_result(None)
            self._conn._forget_channel(self.channel_id)
        else:
            self._resolve_rpc(m)

    def _resolve_rpc(self, reply: Any) -> None:
        if not self._rpcs:
            log.warning("unexpected %r on channel %d", reply, self.channel_id)
            return
        rpc = self._rpcs.popleft()
        if rpc.future.done():  # caller timed out or was cancelled
            return
        if isinstance(reply, rpc.expect):
            rpc.future.set_result(reply)
        else:
            rpc.future.set_exception(errors.ChannelError(
                f"{rpc.what}: unexpected reply {type(reply).__name__} on channel {self.channel_id}"))

    def _on_remote_close(self, m: Any) -> None:
        index = (m.class_id << 16) | m.method_id
        # the request the broker refused: the oldest unanswered one, if the close names its method
        # (a close about basic.publish or basic.ack is about no request; class 0 = unknown: assume it)
        culprit = bool(self._rpcs) and (m.class_id == 0 or self._rpcs[0].index == index)
        what = self._rpcs[0].what if culprit else _method_name(m.class_id, m.method_id)
        exc = errors.channel_error_for(m.reply_code, m.reply_text, m.class_id, m.method_id, what)
        self._conn._send_method(self.channel_id, spec.Channel.CloseOk())
        self._teardown(exc, culprit)
        self._conn._forget_channel(self.channel_id)

    def _on_connection_closed(self, exc: BaseException) -> None:
        self._teardown(exc, True)

    def _teardown(self, exc: BaseException, first_is_culprit: bool = True) -> None:
        """Close with ``exc``: the first pending request gets ``exc`` itself when it caused the
        close, the others (not processed by the broker) a copy that says so."""
        if self._closed_exc is not None:
            return
        self._closed_exc = exc
        self._open = False
        if self._sink is not None:
            self._sink.open = False
        first = first_is_culprit
        while self._rpcs:
            rpc = self._rpcs.popleft()
            if not rpc.future.done():
                rpc.future.set_exception(exc if first else self._not_processed(rpc, exc))
            first = False
        if not self._retain_waiters:
            self._tracker.fail_all(exc)
        for w in self._idle_waiters:
            if not w.done():
                w.set_exception(exc)
        self._idle_waiters = []
        if self._close_future is not None and not self._close_future.done():
            self._close_future.set_result(None)
        consumers, self._consumers = self._consumers, {}
        self._conn._reader.clear_hook(self.channel_id)
        if not isinstance(exc, errors.ChannelClosedError) or exc.reply_code != 200:
            for tag, consumer in consumers.items():
                if consumer.on_cancel is not None and not isinstance(exc, errors.AMQPConnectionError):
                    try:
                        consumer.on_cancel(tag)
                    except Exception:
                        log.exception("on_cancel callback failed")
        cb = self.on_close
        if cb is not None:
            try:
                cb(self, exc)
            except Exception:
                log.exception("channel on_close callback failed")

    def _not_processed(self, rpc: _Rpc, exc: BaseException) -> BaseException:
        """The error of a request pipelined behind the one the broker refused (same class and code:
        the channel is closed for it too, but the broker never looked at it)."""
        if not isinstance(exc, errors.ChannelError):
            return exc
        return type(exc)(f"{rpc.what}: not processed: channel {self.channel_id} was closed by the broker "
                         f"for an earlier call ({exc})", exc.reply_code, exc.reply_text, exc.class_id,
                         exc.method_id)

    # ------------------------------------------------------------------ topology
    async def exchange_declare(self, exchange: str, exchange_type: str = "direct", *,
                               passive: bool = False, durable: bool = False, auto_delete: bool = False,
                               internal: bool = False, arguments: Mapping[str, Any] | None = None,
                               timeout: float | None = None) -> None:
        await self._rpc(build_method(
            spec.Exchange.Declare, exchange=exchange, exchange_type=exchange_type, passive=passive,
            durable=durable, auto_delete=auto_delete, internal=internal, arguments=dict(arguments or {})),
            (spec.Exchange.DeclareOk,), timeout, f"exchange.declare {exchange!r}")

    async def exchange_delete(self, exchange: str, *, if_unused: bool = False,
                              timeout: float | None = None) -> None:
        await self._rpc(build_method(spec.Exchange.Delete, exchange=exchange, if_unused=if_unused),
                        (spec.Exchange.DeleteOk,), timeout, f"exchange.delete {exchange!r}")

    async def exchange_bind(self, destination: str, source: str, routing_key: str = "",
                            arguments: Mapping[str, Any] | None = None,
                            timeout: float | None = None) -> None:
        await self._rpc(build_method(spec.Exchange.Bind, destination=destination, source=source,
                                     routing_key=routing_key, arguments=dict(arguments or {})),
                        (spec.Exchange.BindOk,), timeout, f"exchange.bind {destination!r}<-{source!r}")

    async def exchange_unbind(self, destination: str, source: str, routing_key: str = "",
                              arguments: Mapping[str, Any] | None = None,
                              timeout: float | None = None) -> None:
        await self._rpc(build_method(spec.Exchange.Unbind, destination=destination, source=source,
                                     routing_key=routing_key, arguments=dict(arguments or {})),
                        (spec.Exchange.UnbindOk,), timeout, f"exchange.unbind {destination!r}<-{source!r}")

    async def queue_declare(self, queue: str = "", *, passive: bool = False, durable: bool = False,
                            exclusive: bool = False, auto_delete: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            timeout: float | None = None) -> QueueDeclareOk:
        ok = await self._rpc(build_method(
            spec.Queue.Declare, queue=queue, passive=passive, durable=durable, exclusive=exclusive,
            auto_delete=auto_delete, arguments=dict(arguments or {})),
            (spec.Queue.DeclareOk,), timeout, f"queue.declare {queue!r}")
        return QueueDeclareOk(ok.queue, ok.message_count, ok.consumer_count)

    async def queue_delete(self, queue: str, *, if_unused: bool = False, if_empty: bool = False,
                           timeout: float | None = None) -> int:
        ok = await self._rpc(build_method(spec.Queue.Delete, queue=queue, if_unused=if_unused,
                                          if_empty=if_empty),
                             (spec.Queue.DeleteOk,), timeout, f"queue.delete {queue!r}")
        return int(ok.message_count)

    async def queue_bind(self, queue: str, exchange: str, routing_key: str = "",
                         arguments: Mapping[str, Any] | None = None,
                         timeout: float | None = None) -> None:
        await self._rpc(build_method(spec.Queue.Bind, queue=queue, exchange=exchange,
                                     routing_key=routing_key, arguments=dict(arguments or {})),
                        (spec.Queue.BindOk,), timeout, f"queue.bind {queue!r}<-{exchange!r}")

    async def queue_unbind(self, queue: str, exchange: str, routing_key: str = "",
                           arguments: Mapping[str, Any] | None = None,
                           timeout: float | None = None) -> None:
        await self._rpc(build_method(spec.Queue.Unbind, queue=queue, exchange=exchange,
                                     routing_key=routing_key, arguments=dict(arguments or {})),
                        (spec.Queue.UnbindOk,), timeout, f"queue.unbind {queue!r}<-{exchange!r}")

    async def queue_purge(self, queue: str, *, timeout: float | None = None) -> int:
        ok = await self._rpc(build_method(spec.Queue.Purge, queue=queue), (spec.Queue.PurgeOk,), timeout,
                             f"queue.purge {queue!r}")
        return int(ok.message_count)

    # ------------------------------------------------------------------ flow
    async def basic_qos(self, prefetch_count: int = 0, prefetch_size: int = 0, *,
                        global_: bool = False, timeout: float | None = None) -> None:
        await self._rpc(spec.Basic.Qos(prefetch_size=prefetch_size, prefetch_count=prefetch_count,
                                       global_=global_), (spec.Basic.QosOk,), timeout, "basic.qos")

    async def confirm_select(self, *, timeout: float | None = None) -> None:
        if self._confirms:
            return
        if self._sink is not None:  # confirms are tracked per publish: publish_nowait from now on
            self._sink.open = False
            self._sink = None
        await self._rpc(spec.Confirm.Select(), (spec.Confirm.SelectOk,), timeout, "confirm.select")
        self._confirms = True
        self._tracker.reset()

    # ------------------------------------------------------------------ publish
    def publish_nowait(self, body: bytes, exchange: str = "", routing_key: str = "",
                       properties: Any = None, *, mandatory: bool = False,
                       confirm_value: Any = True) -> asyncio.Future[Any] | None:
        """Queue a publish (written at the end of this loop turn). See transports.base.Channel."""
        fut = self._append_publish(body, exchange, routing_key, properties, mandatory, None, confirm_value)
        conn = self._conn
        if not conn._flush_pending:
            conn._schedule_flush()
        return fut

    def publish_sink(self) -> Any | None:
        """A ``wire.PublishSink`` into this channel (the publisher's one-call path writes there
        until the channel closes), or None when it is closed or in confirm mode."""
        if not self._open or self._closed_exc is not None or self._confirms:
            return None
        sink = self._sink
        if sink is None:
            conn = self._conn
            sink = self._sink = _wire.PublishSink(conn, self.channel_id, conn.frame_max)
        return sink

    def _append_publish(self, body: bytes, exchange: str, routing_key: str, properties: Any,
                        mandatory: bool, waiter: Any = None, value: Any = True) -> asyncio.Future[Any] | None:
        """Encode a publish into the write buffer (no write scheduled); the confirm future or None.
        ``waiter``: a caller-made confirm future (RobustChannel keeps its own so they survive a
        reconnect); it resolves with ``value`` on the broker's ack."""
        if self._closed_exc is not None or not self._open:
            self._raise_closed()
        if properties is None:
            props = _EMPTY_PROPERTIES
        elif type(properties) is bytes:
            props = properties  # pre-encoded: checked by whoever encoded them
        else:
            props = encode_properties(properties)
        conn = self._conn
        try:
            _append_publish(conn._wbuf, self.channel_id, exchange, routing_key, body, props, mandatory,
                            conn.frame_max)
        except ENCODE_ERRORS as exc:  # nothing was written
            raise publish_error(exc, exchange, routing_key, body) from None
        if self._confirms:
            fut: asyncio.Future[Any] = waiter if waiter is not None else self._loop.create_future()
            if mandatory:
                self._tracker.add_mandatory(fut, value)
            else:
                self._tracker.add(fut, value)
            return fut
        return None

    def _publish_tracked(self, body: bytes, exchange: str, routing_key: str, props: bytes,
                         mandatory: bool, waiter: Any, value: Any = True) -> None:
        """``publish_nowait`` in confirm mode with a caller-made waiter (see ``_append_publish``)."""
        self._append_publish(body, exchange, routing_key, props, mandatory, waiter, value)
        conn = self._conn
        if not conn._flush_pending:
            conn._schedule_flush()

    async def publish(self, body: bytes, exchange: str = "", routing_key: str = "",
                      properties: Any = None, *, mandatory: bool = False,
                      timeout: float | None = None) -> None:
        conn = self._conn
        if len(conn._wbuf) > _EAGER_FLUSH_BYTES or not conn._writable.is_set():
            await conn.drain(timeout)
        if not self._confirms:
            self.publish_nowait(body, exchange, routing_key, properties, mandatory=mandatory)
            return
        fut = self._append_publish(body, exchange, routing_key, properties, mandatory)
        if fut is not None:
            conn._flush()  # about to wait for the broker: write now, not at the end of the loop turn
            wait = self._timeout(timeout)
            # a bare timer is cheaper than asyncio.timeout() on this per-message path
            timer = self._loop.call_later(wait, _expire_confirm, fut, wait, self.channel_id)
            try:
                await fut
            finally:
                timer.cancel()

    async def drain(self, timeout: float | None = None) -> None:
        if self._closed_exc is not None:
            self._raise_closed()
        await self._conn.drain(timeout)

    async def wait_for_confirms(self, timeout: float | None = None) -> None:
        """Wait until every publish so far is confirmed; raise PublishNackedError if any of them
        was nacked since the previous call."""
        if not self._confirms:
            raise errors.ChannelError("wait_for_confirms() needs a channel in publisher-confirm mode")
        if self._closed_exc is not None:
            self._raise_closed()
        if self._tracker.outstanding():
            w: asyncio.Future[None] = self._loop.create_future()
            self._idle_waiters.append(w)
            try:
                async with asyncio.timeout(self._timeout(timeout)):
                    await w
            except TimeoutError:
                raise errors.OperationTimeout(
                    f"{self._tracker.outstanding()} publishes still unconfirmed after "
                    f"{self._timeout(timeout)} s on channel {self.channel_id}") from None
        nacked = self._tracker.nacked - self._nacked_seen
        self._nacked_seen = self._tracker.nacked
        if nacked:
            raise errors.PublishNackedError(f"broker nacked {nacked} publish(es) on channel "
                                            f"{self.channel_id}", 0, "NACK")

    # ------------------------------------------------------------------ consume
    async def basic_consume(self, queue: str, callback: ConsumerCallback, *, consumer_tag: str = "",
                            no_ack: bool = False, exclusive: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            on_cancel: CancelCallback | None = None,
                            timeout: float | None = None) -> str:
        if not consumer_tag:
            consumer_tag = f"mmate.{self.channel_id}.{next(_tag_counter)}"
        if consumer_tag in self._consumers:
            raise errors.ChannelError(f"consumer tag {consumer_tag!r} already in use on this channel")
        # registered before the request so deliveries right after consume-ok find it
        self._add_consumer(consumer_tag, _Consumer(queue, callback, on_cancel, no_ack))
        try:
            await self._rpc(build_method(spec.Basic.Consume, queue=queue, consumer_tag=consumer_tag,
                                         no_ack=no_ack, exclusive=exclusive, arguments=dict(arguments or {})),
                            (spec.Basic.ConsumeOk,), timeout, f"basic.consume {queue!r}")
        except BaseException:
            self._forget_consumer(consumer_tag)
            raise
        return consumer_tag

    def _add_consumer(self, consumer_tag: str, consumer: _Consumer) -> None:
        """Register a consumer. A callback with a ``channel_hook`` (the subscription's compiled
        step) gets its deliveries straight from the frame reader, acking on this channel
        (FrameReader.set_hook; a callback's ``tag_base`` shifts the hooked tags and unshifts its
        acks); a no_ack consumer's callback with a ``no_ack_hook`` (the bridge's reply step) too,
        settling each tag on this channel as ``_on_frame`` does."""
        self._consumers[consumer_tag] = consumer
        callback = consumer.callback
        # looked up on the type: an object answering any attribute (a mock) has no hook
        base = 0
        if consumer.no_ack:
            hook = getattr(type(callback), "no_ack_hook", None)
            settle: Any = self._acks.settle
        else:
            hook = getattr(type(callback), "channel_hook", None)
            settle = self._acks.ack
            if hook is not None:
                base = getattr(callback, "tag_base", 0)  # a recovering channel shifts its tags
                if base:
                    settle = self._acks.shifted(base)
        if hook is not None:
            self._conn._reader.set_hook(self.channel_id, consumer_tag, hook(callback, settle), base)

    def _forget_consumer(self, consumer_tag: str) -> _Consumer | None:
        """Drop a consumer (and its frame-reader hook)."""
        self._conn._reader.clear_hook(self.channel_id, consumer_tag)
        return self._consumers.pop(consumer_tag, None)

    async def basic_cancel(self, consumer_tag: str, *, timeout: float | None = None) -> None:
        if self._closed_exc is not None:
            self._forget_consumer(consumer_tag)
            return
        await self._rpc(build_method(spec.Basic.Cancel, consumer_tag=consumer_tag), (spec.Basic.CancelOk,),
                        timeout, f"basic.cancel {consumer_tag!r}")
        self._forget_consumer(consumer_tag)

    async def basic_get(self, queue: str, *, no_ack: bool = False,
                        timeout: float | None = None) -> Any | None:
        reply = await self._rpc(build_method(spec.Basic.Get, queue=queue, no_ack=no_ack),
                                (_Delivery, spec.Basic.GetEmpty), timeout, f"basic.get {queue!r}")
        if type(reply) is _Delivery:
            if no_ack:
                self._settle(reply.delivery_tag, False)
            return reply
        return None

    # ------------------------------------------------------------------ acks
    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        """Ack (coalesced with the in-order acks of this loop turn: frames.Acks)."""
        self._acks.ack(delivery_tag, multiple)

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        if self._closed_exc is not None:
            self._raise_closed()
        self._emit_ack_run()
        _append_nack(self._conn._wbuf, self.channel_id, delivery_tag, multiple, requeue)
        self._settle(delivery_tag, multiple)
        conn = self._conn
        if not conn._flush_pending:
            conn._schedule_flush()

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> None:
        if self._closed_exc is not None:
            self._raise_closed()
        self._emit_ack_run()
        _append_reject(self._conn._wbuf, self.channel_id, delivery_tag, requeue)
        self._settle(delivery_tag, False)
        conn = self._conn
        if not conn._flush_pending:
            conn._schedule_flush()

    def _settle(self, delivery_tag: int, multiple: bool) -> None:
        """Advance the settled watermark (tags we no longer owe the broker an answer for)."""
        self._acks.settle(delivery_tag, multiple)

    def _emit_ack_run(self) -> None:
        """Write the pending in-order ack run (called before any other settle frame and at flush)."""
        self._acks.emit()

    # ------------------------------------------------------------------ close
    async def close(self, timeout: float | None = None) -> None:
        """Close the channel (unacked deliveries go back to their queues)."""
        if self._closed_exc is not None or not self._open:
            return
        self._emit_ack_run()
        self._close_future = self._loop.create_future()
        self._conn._send_method(self.channel_id, spec.Channel.Close(200, "Normal shutdown", 0, 0))
        try:
            async with asyncio.timeout(self._timeout(timeout)):
                await asyncio.shield(self._close_future)
        except TimeoutError:
            log.warning("channel %d: close-ok not received in time", self.channel_id)
        finally:
            self._teardown(errors.ChannelClosedError(f"channel {self.channel_id} closed by client", 200,
                                                     "Normal shutdown"))
            self._conn._forget_channel(self.channel_id)
