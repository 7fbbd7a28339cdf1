"""``Queue`` (declare, bind/unbind, consume/cancel, get, purge, delete, iterator) and
``QueueIterator`` (``async with queue.iterator() as it: async for message in it``), aio-pika's API.

A consumer callback runs as one task per message, as in aio-pika (so handlers can await and run
concurrently up to the channel's prefetch); what it raises goes to the loop's exception handler, the
message stays unacked.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from mmate_fast import errors
from mmate_fast.compat.aio_pika._errors import raise_translated
from mmate_fast.compat.aio_pika._frames import spec
from mmate_fast.compat.aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractQueueIterator,
    Arguments,
    ConsumerTag,
    ExchangeParamType,
    TimeoutType,
    get_exchange_name,
)
from mmate_fast.compat.aio_pika.exceptions import QueueEmpty
from mmate_fast.compat.aio_pika.message import incoming
from mmate_fast.compat.aio_pika.tools import CallbackCollection, ensure_awaitable

log = logging.getLogger("mmate_fast.compat.aio_pika")


async def _run(callback: Callable[[Any], Awaitable[Any]], message: Any,
               loop: asyncio.AbstractEventLoop) -> None:
    """Run one consumer callback; what it raises goes to the loop's exception handler (where
    aio-pika's done callback sends it too); the message stays unacked."""
    try:
        await callback(message)
    except Exception as error:
        loop.call_exception_handler({"message": f"Exception in consumer callback {callback!r}",
                                     "exception": error})


class Queue(AbstractQueue):
    """A queue on a channel (aio-pika's ``Queue``)."""

    __slots__ = ("__weakref__", "arguments", "auto_delete", "channel", "close_callbacks",
                 "declaration_result", "durable", "exclusive", "name", "passive")

    def __init__(self, channel: Any, name: str | None, durable: bool, exclusive: bool, auto_delete: bool,
                 arguments: Arguments, passive: bool = False) -> None:
        self.close_callbacks = CallbackCollection(self)
        self.channel = channel
        self.name = name or ""
        self.durable = durable
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.arguments = arguments
        self.passive = passive

    def __str__(self) -> str:
        return f"{self.name}"

    def __repr__(self) -> str:
        return (f"<{type(self).__name__}({self}): auto_delete={self.auto_delete}, durable={self.durable}, "
                f"exclusive={self.exclusive}, arguments={self.arguments!r}")

    async def declare(self, timeout: TimeoutType = None) -> Any:
        ch = await self.channel.get_underlay_channel()
        try:
            ok = await ch.queue_declare(self.name, passive=self.passive, durable=self.durable,
                                        exclusive=self.exclusive, auto_delete=self.auto_delete,
                                        arguments=self.arguments, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        self.declaration_result = spec.Queue.DeclareOk(ok.queue, ok.message_count, ok.consumer_count)
        self.name = ok.queue
        return self.declaration_result

    async def bind(self, exchange: ExchangeParamType, routing_key: str | None = None, *,
                   arguments: Arguments = None, timeout: TimeoutType = None) -> Any:
        """Route messages of ``exchange`` with ``routing_key`` (default: the queue name) here."""
        if routing_key is None:
            routing_key = self.name
        ch = await self.channel.get_underlay_channel()
        try:
            await ch.queue_bind(self.name, get_exchange_name(exchange), routing_key, arguments, timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        return spec.Queue.BindOk()

    async def unbind(self, exchange: ExchangeParamType, routing_key: str | None = None,
                     arguments: Arguments = None, timeout: TimeoutType = None) -> Any:
        if routing_key is None:
            routing_key = self.name
        ch = await self.channel.get_underlay_channel()
        try:
            await ch.queue_unbind(self.name, get_exchange_name(exchange), routing_key, arguments, timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        return spec.Queue.UnbindOk()

    async def consume(self, callback: Callable[[AbstractIncomingMessage], Awaitable[Any]],
                      no_ack: bool = False, exclusive: bool = False, arguments: Arguments = None,
                      consumer_tag: ConsumerTag | None = None, timeout: TimeoutType = None) -> ConsumerTag:
        """Start consuming: ``callback(message)`` runs as a task per message; returns the consumer tag."""
        callback = ensure_awaitable(callback)
        channel = self.channel
        ch = await channel.get_underlay_channel()
        loop = asyncio.get_running_loop()
        create_task = loop.create_task

        def on_delivery(delivery: Any) -> None:
            # one task per message, as aio-pika; not kept in a set and without a done callback (a
            # loop handle less per message): _run hands what the callback raises to the loop's
            # exception handler itself, so no task ends with an exception nobody retrieved
            create_task(_run(callback, incoming(delivery, no_ack, ch, channel), loop))

        tag = consumer_tag or f"ctag{ch.channel_id}.{uuid.uuid4().hex}"
        try:
            return str(await ch.basic_consume(self.name, on_delivery, consumer_tag=tag, no_ack=no_ack,
                                              exclusive=exclusive, arguments=arguments, timeout=timeout,
                                              on_cancel=channel._consumer_cancelled))
        except errors.MmateError as error:
            raise_translated(error, channel)
            raise  # unreachable

    async def cancel(self, consumer_tag: ConsumerTag, timeout: TimeoutType = None,
                     nowait: bool = False) -> Any:
        """Stop the consumer ``consumer_tag`` (messages already delivered stay as they are)."""
        ch = await self.channel.get_underlay_channel()
        try:
            await ch.basic_cancel(consumer_tag, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        return None if nowait else spec.Basic.CancelOk(consumer_tag=consumer_tag)

    async def get(self, *, no_ack: bool = False, fail: bool = True, timeout: TimeoutType = 5) -> Any:
        """One message (basic.get), or QueueEmpty (``fail=False``: None) when there is none."""
        channel = self.channel
        ch = await channel.get_underlay_channel()
        try:
            delivery = await ch.basic_get(self.name, no_ack=no_ack, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, channel)
        if delivery is None:
            if fail:
                raise QueueEmpty
            return None
        return incoming(delivery, no_ack, ch, channel)

    async def purge(self, no_wait: bool = False, timeout: TimeoutType = None) -> Any:
        log.info("Purging queue: %r", self)
        ch = await self.channel.get_underlay_channel()
        try:
            count = await ch.queue_purge(self.name, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        return None if no_wait else spec.Queue.PurgeOk(message_count=count)

    async def delete(self, *, if_unused: bool = True, if_empty: bool = True,
                     timeout: TimeoutType = None) -> Any:
        """Delete the queue (by default only when unused and empty, as aio-pika)."""
        log.info("Deleting %r", self)
        ch = await self.channel.get_underlay_channel()
        try:
            count = await ch.queue_delete(self.name, if_unused=if_unused, if_empty=if_empty, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        return spec.Queue.DeleteOk(message_count=count)

    def __aiter__(self) -> QueueIterator:
        return self.iterator()

    def iterator(self, **kwargs: Any) -> QueueIterator:
        """``async with queue.iterator() as it: async for message in it: ...`` (``kwargs`` go to
        ``consume``; ``timeout=`` also bounds the wait for each message: TimeoutError)."""
        return QueueIterator(self, **kwargs)


class QueueIterator(AbstractQueueIterator):
    """Messages of a queue as an async iterator (consumes on first use, cancels on close; messages
    received but not yet handed out are nacked back to the queue)."""

    DEFAULT_CLOSE_TIMEOUT = 5

    def __init__(self, queue: Queue, **kwargs: Any) -> None:
        self._amqp_queue = queue
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._consumer_tag: ConsumerTag | None = None
        self._closed = asyncio.get_running_loop().create_future()
        self._consume_kwargs = kwargs
        self._channel_closed = queue.channel.closed()
        self._channel_closed.add_done_callback(self._on_channel_closed)

    @property
    def consumer_tag(self) -> ConsumerTag | None:
        return self._consumer_tag

    def __str__(self) -> str:
        return f"queue[{self._amqp_queue}](...)"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: queue={self._amqp_queue.name!r} ctag={self.consumer_tag!r}>"

    def _on_channel_closed(self, _: Any) -> None:
        if not self._closed.done():
            self._closed.set_result(True)
        self._queue.put_nowait(None)  # wakes a waiting __anext__

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        await self._queue.put(message)

    async def consume(self) -> None:
        self._consumer_tag = await self._amqp_queue.consume(self.on_message, **self._consume_kwargs)

    async def close(self) -> None:
        """Cancel the consumer and nack (requeue) the messages received but not handed out."""
        tag, self._consumer_tag = self._consumer_tag, None
        self._channel_closed.remove_done_callback(self._on_channel_closed)
        if not self._closed.done():
            self._closed.set_result(True)
        channel = self._amqp_queue.channel
        if tag is None or channel.is_closed:
            return
        await self._amqp_queue.cancel(tag)
        no_ack = self._consume_kwargs.get("no_ack", False)
        while not self._queue.empty():
            msg = self._queue.get_nowait()
            if msg is None:
                continue
            if no_ack:
                log.warning("Message %r lost for consumer with no_ack %r", msg, self)
            elif not channel.is_closed:
                await msg.nack(requeue=True, multiple=False)

    def __aiter__(self) -> QueueIterator:
        return self

    async def __aenter__(self) -> QueueIterator:
        if self._consumer_tag is None:
            await self.consume()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        await self.close()

    async def __anext__(self) -> Any:
        if self._closed.done() and self._queue.empty():
            raise StopAsyncIteration
        if self._consumer_tag is None and not self._closed.done():
            await self.consume()
        timeout: float | None = self._consume_kwargs.get("timeout")
        try:
            if timeout is not None and timeout > 0:
                msg = await asyncio.wait_for(self._queue.get(), timeout=timeout)
            else:
                msg = await self._queue.get()
        except (TimeoutError, asyncio.CancelledError):
            if timeout is not None:
                close_timeout = timeout if timeout > 0 else self.DEFAULT_CLOSE_TIMEOUT
                log.info("%r closing with timeout %d seconds", self, close_timeout)
                await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(self.close())), close_timeout)
            raise
        if msg is None:
            raise StopAsyncIteration
        return msg


__all__ = ("ConsumerTag", "Queue", "QueueIterator")
