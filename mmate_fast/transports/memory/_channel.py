"""MemoryChannel: the Channel interface (mmate_fast._transport) on top of the in-memory Broker.

Errors follow RabbitMQ: a failing awaited call raises the named ChannelClosedError and closes this
channel only; failures of fire-and-forget calls (publish to a missing exchange, ack of an unknown
delivery tag) close the channel on the next loop turn and are raised by the next call. Arguments the
AMQP client refuses before they reach RabbitMQ (names over 255 bytes, bad properties) raise the same
InvalidArgumentError here, and the channel stays open.
"""
from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mmate_fast._checks import method_names, publish_names
from mmate_fast._ext import load
from mmate_fast._transport import CancelCallback, ConsumerCallback, QueueDeclareOk, ReturnCallback
from mmate_fast._transport.properties import encode_properties
from mmate_fast.errors import (
    ChannelClosedError,
    ConnectionClosedError,
    OperationTimeout,
    PublishNackedError,
    PublishReturnedError,
)
from mmate_fast.transports.memory._broker import Exchange, expiration_ms, expires_at
from mmate_fast.transports.memory._errors import broker_error, copy_error, default_exchange_refused
from mmate_fast.transports.memory._queue import Consumer, Message, Queue

if TYPE_CHECKING:
    from mmate_fast.transports.memory._connection import MemoryConnection

_frames = load("frames")
_Delivery = _frames.Delivery
_KIND_DELIVER = _Delivery.KIND_DELIVER
_KIND_GET_OK = _Delivery.KIND_GET_OK
_KIND_RETURN = _Delivery.KIND_RETURN
_decode_properties = _frames.decode_properties

log = logging.getLogger("mmate_fast.transports.memory")

_YIELD_EVERY = 512  # ``await publish()`` yields to the loop this often, so consumers get to run

_Unacked = tuple[Queue, Message, Consumer | None]


def _is_coroutine_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


class MemoryChannel:
    """One channel of a MemoryConnection."""

    def __init__(self, conn: MemoryConnection, channel_id: int, publisher_confirms: bool) -> None:
        self._conn = conn
        self._broker = conn._broker
        self._loop = conn._loop
        self.channel_id = channel_id
        self.on_return: ReturnCallback | None = None
        self._confirms = publisher_confirms
        self._closed = False
        self._error: ChannelClosedError | None = None  # why it closed
        self._pending: ChannelClosedError | None = None  # broker-side close scheduled
        self._next_tag = 1
        self._unacked: dict[int, _Unacked] = {}
        self.global_prefetch = 0
        self.global_unacked = 0
        self._consumer_prefetch = 0
        self._consumers: dict[str, Consumer] = {}
        self._unconfirmed: set[asyncio.Future[bool]] = set()
        self._nacked = 0
        self._nacked_seen = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._since_yield = 0

    # -- state ------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return not self._closed and self._pending is None and not self._conn._closed

    @property
    def publisher_confirms(self) -> bool:
        return self._confirms

    def _raise_closed(self) -> None:
        if self._conn._closed and (self._error is None or self._error.reply_code in (0, 200)):
            raise ConnectionClosedError("connection is closed: open a new one", 200, "Normal shutdown")
        assert self._error is not None
        raise copy_error(self._error)

    def _check(self) -> None:
        """Raise if closed (or a broker-side close is pending: then close now)."""
        if self._closed:
            self._raise_closed()
        if self._pending is not None:
            self._shutdown(self._pending)
            self._raise_closed()

    def _fail(self, err: ChannelClosedError) -> None:
        """Close this channel because of ``err`` and raise it."""
        self._shutdown(err)
        raise err

    def _fail_later(self, err: ChannelClosedError) -> None:
        """A fire-and-forget call failed: close on the next loop turn, as the broker's channel.close."""
        if self._pending is None and not self._closed:
            self._pending = err
            self._loop.call_soon(self._shutdown, err)

    def _shutdown(self, err: ChannelClosedError) -> None:
        """Close: drop consumers, requeue unacked messages, fail outstanding confirms."""
        if self._closed:
            return
        self._closed = True
        self._error = err
        self._conn._channels.pop(self.channel_id, None)
        refused = err.reply_code != 200  # closed by a channel-level error, not by the application
        for c in list(self._consumers.values()):
            c.queue.remove_consumer(c)
            if refused and c.on_cancel is not None:  # as RabbitMQ's client: the consumer is gone
                self._loop.call_soon(self._call_on_cancel, c.on_cancel, c.tag)
        self._consumers.clear()
        self._requeue(list(self._unacked.values()))
        self._unacked.clear()
        for fut in self._unconfirmed:
            if not fut.done():
                fut.set_exception(copy_error(err))
        self._unconfirmed.clear()

    @staticmethod
    def _requeue(records: list[_Unacked]) -> None:
        by_queue: dict[Queue, list[Message]] = {}
        for q, msg, _ in records:
            by_queue.setdefault(q, []).append(msg)
        for q, msgs in by_queue.items():
            q.requeue(msgs)

    # -- topology ---------------------------------------------------------------------------
    async def exchange_declare(self, exchange: str, exchange_type: str = "direct", *,
                               passive: bool = False, durable: bool = False, auto_delete: bool = False,
                               internal: bool = False, arguments: Mapping[str, Any] | None = None,
                               timeout: float | None = None) -> None:
        method_names(exchange=exchange)
        self._check()
        try:
            self._broker.declare_exchange(exchange, exchange_type, passive, durable, auto_delete, internal,
                                          arguments or {})
        except ChannelClosedError as e:
            self._fail(e)

    async def exchange_delete(self, exchange: str, *, if_unused: bool = False,
                              timeout: float | None = None) -> None:
        method_names(exchange=exchange)
        self._check()
        try:
            self._broker.delete_exchange(exchange, if_unused)
        except ChannelClosedError as e:
            self._fail(e)

    def _exchange(self, name: str, method: str) -> Exchange:
        if name == "":
            raise default_exchange_refused(method)
        ex = self._broker.exchanges.get(name)
        if ex is None:
            from mmate_fast.transports.memory._errors import not_found
            raise not_found("exchange", name, method)
        return ex

    async def exchange_bind(self, destination: str, source: str, routing_key: str = "",
                            arguments: Mapping[str, Any] | None = None,
                            timeout: float | None = None) -> None:
        method_names(destination=destination, source=source, routing_key=routing_key)
        self._check()
        try:
            dest = self._exchange(destination, "exchange.bind")
            self._exchange(source, "exchange.bind")
            self._broker.bind(source, dest, routing_key, arguments or {}, "exchange.bind")
        except ChannelClosedError as e:
            self._fail(e)

    async def exchange_unbind(self, destination: str, source: str, routing_key: str = "",
                              arguments: Mapping[str, Any] | None = None,
                              timeout: float | None = None) -> None:
        method_names(destination=destination, source=source, routing_key=routing_key)
        self._check()
        try:
            dest = self._exchange(destination, "exchange.unbind")
            self._broker.unbind(source, dest, routing_key, arguments or {}, "exchange.unbind")
        except ChannelClosedError as e:
            self._fail(e)

    async def queue_declare(self, queue: str = "", *, passive: bool = False, durable: bool = False,
                            exclusive: bool = False, auto_delete: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            timeout: float | None = None) -> QueueDeclareOk:
        method_names(queue=queue)
        self._check()
        try:
            q = self._broker.declare_queue(queue, self._conn, passive, durable, exclusive, auto_delete,
                                           arguments or {}, self._loop)
        except ChannelClosedError as e:
            self._fail(e)
            raise  # unreachable: _fail raises
        q.expire_head()
        return QueueDeclareOk(q.name, len(q.messages), len(q.consumers))

    async def queue_delete(self, queue: str, *, if_unused: bool = False, if_empty: bool = False,
                           timeout: float | None = None) -> int:
        method_names(queue=queue)
        self._check()
        q = self._broker.queues.get(queue)
        if q is None:
            return 0
        try:
            self._broker.queue_for(queue, self._conn, "queue.delete")
            if if_unused and q.consumers:
                raise broker_error(406, f"queue '{queue}' in vhost '/' in use", "queue.delete")
            if if_empty and q.messages:
                raise broker_error(406, f"queue '{queue}' in vhost '/' not empty", "queue.delete")
        except ChannelClosedError as e:
            self._fail(e)
        return self._broker.delete_queue(q)

    async def queue_bind(self, queue: str, exchange: str, routing_key: str = "",
                         arguments: Mapping[str, Any] | None = None,
                         timeout: float | None = None) -> None:
        method_names(queue=queue, exchange=exchange, routing_key=routing_key)
        self._check()
        try:
            if exchange == "":
                raise default_exchange_refused("queue.bind")
            q = self._broker.queue_for(queue, self._conn, "queue.bind")
            self._broker.bind(exchange, q, routing_key, arguments or {}, "queue.bind")
        except ChannelClosedError as e:
            self._fail(e)

    async def queue_unbind(self, queue: str, exchange: str, routing_key: str = "",
                           arguments: Mapping[str, Any] | None = None,
                           timeout: float | None = None) -> None:
        method_names(queue=queue, exchange=exchange, routing_key=routing_key)
        self._check()
        try:
            if exchange == "":
                raise default_exchange_refused("queue.unbind")
            q = self._broker.queue_for(queue, self._conn, "queue.unbind")
            self._broker.unbind(exchange, q, routing_key, arguments or {}, "queue.unbind")
        except ChannelClosedError as e:
            self._fail(e)

    async def queue_purge(self, queue: str, *, timeout: float | None = None) -> int:
        method_names(queue=queue)
        self._check()
        try:
            q = self._broker.queue_for(queue, self._conn, "queue.purge")
        except ChannelClosedError as e:
            self._fail(e)
            raise
        return q.purge()

    # -- flow -------------------------------------------------------------------------------
    async def basic_qos(self, prefetch_count: int = 0, prefetch_size: int = 0, *,
                        global_: bool = False, timeout: float | None = None) -> None:
        self._check()
        if global_:
            self.global_prefetch = prefetch_count
            for c in self._consumers.values():
                c.queue.kick()
        else:
            self._consumer_prefetch = prefetch_count

    async def confirm_select(self, *, timeout: float | None = None) -> None:
        self._check()
        self._confirms = True

    # -- publish ----------------------------------------------------------------------------
    def publish_nowait(self, body: bytes, exchange: str = "", routing_key: str = "",
                       properties: Any = None, *, mandatory: bool = False,
                       confirm_value: Any = True) -> asyncio.Future[Any] | None:
        if self._closed or self._conn._closed:
            self._raise_closed()
        publish_names(exchange, routing_key)
        if type(properties) is bytes:  # pre-encoded (as the RabbitMQ channel accepts them)
            properties = _decode_properties(properties)[0]
        elif properties is not None:
            encode_properties(properties)  # refuses what the AMQP client refuses
        loop = self._loop
        if self._pending is not None:  # the broker is closing this channel: the publish is dropped
            return self._failed_future(self._pending)
        broker = self._broker
        try:
            if exchange == "":
                q = broker.queues.get(routing_key)
                queues = [q] if q is not None else []
            else:
                queues = broker.route(broker.exchange_for_publish(exchange), routing_key,
                                      properties.headers if properties is not None else None)
            ttl = expiration_ms(properties) if properties is not None else None
        except ChannelClosedError as e:
            self._fail_later(e)
            return self._failed_future(e)
        if type(body) is not bytes:
            body = bytes(body)
        rejected = False
        for q in queues:
            at = expires_at(q, ttl, loop) if ttl is not None or q.ttl is not None else None
            if not q.enqueue(Message(body, exchange, routing_key, properties, at), loop):
                rejected = True
        returned = mandatory and not queues
        if returned:
            loop.call_soon(self._return, body, exchange, routing_key, properties)
        if not self._confirms:
            return None
        fut: asyncio.Future[Any] = loop.create_future()
        if rejected:
            self._nacked += 1
            fut.set_exception(PublishNackedError(
                f"broker nacked the publish to {exchange!r}/{routing_key!r}: a queue is full "
                "(x-overflow reject-publish)"))
        elif returned:
            self._unconfirmed.add(fut)
            loop.call_soon(self._returned_confirm, fut, exchange, routing_key)
        else:
            fut.set_result(confirm_value)
        return fut

    def _failed_future(self, err: ChannelClosedError) -> asyncio.Future[bool] | None:
        if not self._confirms:
            return None
        fut: asyncio.Future[bool] = self._loop.create_future()
        fut.set_exception(copy_error(err))
        return fut

    def _return(self, body: bytes, exchange: str, routing_key: str, properties: Any) -> None:
        cb = self.on_return
        if cb is None or self._closed:
            return
        d = _Delivery(kind=_KIND_RETURN, channel=self.channel_id, exchange=exchange,
                      routing_key=routing_key, reply_code=312, reply_text="NO_ROUTE",
                      properties=properties, body=body)
        try:
            cb(d)
        except Exception:
            log.exception("on_return callback failed")

    def _returned_confirm(self, fut: asyncio.Future[bool], exchange: str, routing_key: str) -> None:
        self._unconfirmed.discard(fut)
        if not fut.done():
            fut.set_exception(PublishReturnedError(
                f"mandatory publish to {exchange!r} with routing key {routing_key!r} was returned: "
                "312 NO_ROUTE (no queue is bound for it)", 312, "NO_ROUTE"))

    async def publish(self, body: bytes, exchange: str = "", routing_key: str = "",
                      properties: Any = None, *, mandatory: bool = False,
                      timeout: float | None = None) -> None:
        self._check()
        fut = self.publish_nowait(body, exchange, routing_key, properties, mandatory=mandatory)
        if fut is not None:
            try:
                await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise OperationTimeout(f"no publisher confirm within {timeout} s on channel "
                                       f"{self.channel_id}") from None
            return
        self._since_yield += 1
        if self._since_yield >= _YIELD_EVERY:
            self._since_yield = 0
            await asyncio.sleep(0)

    async def drain(self, timeout: float | None = None) -> None:
        self._check()
        await asyncio.sleep(0)

    async def wait_for_confirms(self, timeout: float | None = None) -> None:
        """Wait for every outstanding confirm; raise PublishNackedError if any publish was nacked
        since the previous call (as the RabbitMQ channel does)."""
        self._check()
        if self._unconfirmed:
            _done, pending = await asyncio.wait(list(self._unconfirmed), timeout=timeout)
            if pending:
                raise OperationTimeout(f"{len(pending)} publishes still unconfirmed after {timeout} s")
        nacked, self._nacked_seen = self._nacked - self._nacked_seen, self._nacked
        if nacked:
            raise PublishNackedError(f"broker nacked {nacked} publish(es) on channel {self.channel_id}",
                                     0, "NACK")

    # -- consume ----------------------------------------------------------------------------
    async def basic_consume(self, queue: str, callback: ConsumerCallback, *, consumer_tag: str = "",
                            no_ack: bool = False, exclusive: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            on_cancel: CancelCallback | None = None,
                            timeout: float | None = None) -> str:
        method_names(queue=queue, consumer_tag=consumer_tag)
        self._check()
        m = "basic.consume"
        try:
            q = self._broker.queue_for(queue, self._conn, m)
            if q.consumers and (exclusive or any(c.exclusive for c in q.consumers)):
                raise broker_error(403, f"queue '{queue}' in vhost '/' in exclusive use", m)
            tag = consumer_tag or "amq.ctag-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
            if tag in self._consumers:
                raise broker_error(530, f"attempt to reuse consumer tag '{tag}'", m)
        except ChannelClosedError as e:
            self._fail(e)
            raise
        c = Consumer(tag, self, q, callback, _is_coroutine_callable(callback), no_ack, exclusive,
                     self._consumer_prefetch, on_cancel)
        self._consumers[tag] = c
        q.add_consumer(c)
        return tag

    async def basic_cancel(self, consumer_tag: str, *, timeout: float | None = None) -> None:
        self._check()
        c = self._consumers.pop(consumer_tag, None)
        if c is not None:
            c.queue.remove_consumer(c)

    def _broker_cancel(self, c: Consumer) -> None:
        """The queue went away: forget the consumer and tell the application (basic.cancel)."""
        self._consumers.pop(c.tag, None)
        if c.on_cancel is not None:
            self._loop.call_soon(self._call_on_cancel, c.on_cancel, c.tag)

    @staticmethod
    def _call_on_cancel(cb: CancelCallback, tag: str) -> None:
        try:
            cb(tag)
        except Exception:
            log.exception("on_cancel callback failed")

    def _deliver(self, c: Consumer, q: Queue, msg: Message) -> None:
        """Hand one message to consumer ``c`` (called by the queue's dispatch, never inside publish)."""
        tag = self._next_tag
        self._next_tag = tag + 1
        if not c.no_ack:
            self._unacked[tag] = (q, msg, c)
            c.unacked += 1
            self.global_unacked += 1
        d = _Delivery(kind=_KIND_DELIVER, channel=self.channel_id, consumer_tag=c.tag, delivery_tag=tag,
                      redelivered=msg.redelivered, exchange=msg.exchange, routing_key=msg.routing_key,
                      properties=msg.properties, body=msg.body)
        if c.is_coro:
            task = self._loop.create_task(c.callback(d))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
            return
        try:
            result = c.callback(d)
        except Exception:
            log.exception("consumer callback for %r failed", c.tag)
            return
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(result, loop=self._loop)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("consumer callback failed", exc_info=task.exception())

    async def basic_get(self, queue: str, *, no_ack: bool = False,
                        timeout: float | None = None) -> Any | None:
        method_names(queue=queue)
        self._check()
        try:
            q = self._broker.queue_for(queue, self._conn, "basic.get")
        except ChannelClosedError as e:
            self._fail(e)
            raise
        msg = q.get()
        if msg is None:
            return None
        tag = self._next_tag
        self._next_tag = tag + 1
        if not no_ack:
            self._unacked[tag] = (q, msg, None)
        return _Delivery(kind=_KIND_GET_OK, channel=self.channel_id, delivery_tag=tag,
                         redelivered=msg.redelivered, exchange=msg.exchange, routing_key=msg.routing_key,
                         message_count=len(q.messages), properties=msg.properties, body=msg.body)

    # -- acknowledgements -------------------------------------------------------------------
    def _take(self, delivery_tag: int, multiple: bool, method: str) -> list[_Unacked]:
        """Remove and return the unacked records an ack/nack/reject settles (406 on unknown tags)."""
        if self._closed or self._conn._closed:
            self._raise_closed()
        if self._pending is not None:
            return []
        unacked = self._unacked
        if not multiple:
            rec = unacked.pop(delivery_tag, None)
            if rec is None:
                self._fail_later(broker_error(406, f"unknown delivery tag {delivery_tag}", method))
                return []
            records = [rec]
        else:
            tags = [t for t in unacked if delivery_tag == 0 or t <= delivery_tag]
            if not tags:
                self._fail_later(broker_error(406, f"unknown delivery tag {delivery_tag}", method))
                return []
            records = [unacked.pop(t) for t in tags]
        for _, _, c in records:
            if c is not None:
                c.unacked -= 1
                self.global_unacked -= 1
        return records

    def _settled(self, records: list[_Unacked]) -> None:
        if self.global_prefetch:
            for c in self._consumers.values():
                c.queue.kick()
        else:
            for _, _, owner in records:
                if owner is not None:
                    owner.queue.kick()

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        if not multiple and not self._closed and self._pending is None:  # the hot path
            rec = self._unacked.pop(delivery_tag, None)
            if rec is not None:
                c = rec[2]
                if c is not None:
                    c.unacked -= 1
                    self.global_unacked -= 1
                    if self.global_prefetch:
                        self._settled([rec])
                    else:
                        c.queue.kick()
                return
        records = self._take(delivery_tag, multiple, "basic.ack")
        self._settled(records)

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self._settle_negative(self._take(delivery_tag, multiple, "basic.nack"), requeue)

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> None:
        self._settle_negative(self._take(delivery_tag, False, "basic.reject"), requeue)

    def _settle_negative(self, records: list[_Unacked], requeue: bool) -> None:
        if requeue:
            self._requeue(records)
        else:
            for q, msg, _ in records:
                if not q.deleted:
                    q.dead_letter(msg, "rejected")
        self._settled(records)

    async def close(self, timeout: float | None = None) -> None:
        if self._pending is not None:
            self._shutdown(self._pending)
        if not self._closed:
            self._shutdown(ChannelClosedError("channel closed by the application: open a new one",
                                              200, "Normal shutdown"))


__all__ = ["MemoryChannel"]
