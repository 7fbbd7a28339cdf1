"""``Channel``: aio-pika's channel API on a mmate_fast AMQP channel (plain or robust).

``connection.channel()`` returns it unopened; ``await`` it (or ``async with``) to open it. Publisher
confirms are on by default, as in aio-pika.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Generator
from types import TracebackType
from typing import Any

from mmate_fast import errors
from mmate_fast.compat.aio_pika._errors import raise_translated, translate
from mmate_fast.compat.aio_pika._frames import spec
from mmate_fast.compat.aio_pika.abc import AbstractChannel, Arguments, ExchangeType, TimeoutType
from mmate_fast.compat.aio_pika.exceptions import ChannelClosed, ChannelInvalidStateError
from mmate_fast.compat.aio_pika.exchange import Exchange
from mmate_fast.compat.aio_pika.message import ReturnedMessage
from mmate_fast.compat.aio_pika.queue import Queue
from mmate_fast.compat.aio_pika.tools import CallbackCollection
from mmate_fast.compat.aio_pika.transaction import Transaction, channel_rpc

log = logging.getLogger("mmate_fast.compat.aio_pika")

#: returned messages kept for the publishes they belong to (confirm mode)
_MAX_RETURNED = 4096


class ChannelContext(AbstractChannel):
    """``await channel`` and ``async with channel`` open it; leaving the ``async with`` closes it."""

    async def __aenter__(self) -> Any:
        if not self.is_initialized:  # type: ignore[attr-defined]
            await self.initialize()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        await self.close(exc_val)  # type: ignore[attr-defined]

    def __await__(self) -> Generator[Any, Any, Any]:
        yield from self.initialize().__await__()  # type: ignore[attr-defined]
        return self


class Channel(ChannelContext):
    """An AMQP channel (aio-pika's ``Channel``)."""

    QUEUE_CLASS: type[Queue] = Queue
    EXCHANGE_CLASS: type[Exchange] = Exchange

    default_exchange: Exchange

    def __init__(self, connection: Any, channel_number: int | None = None, publisher_confirms: bool = True,
                 on_return_raises: bool = False) -> None:
        if not publisher_confirms and on_return_raises:
            raise RuntimeError('"on_return_raises" not applicable without "publisher_confirms"')
        self._connection = connection
        self._closed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._channel: Any = None
        self._channel_number = channel_number
        self.close_callbacks = CallbackCollection(self)
        self.return_callbacks = CallbackCollection(self)
        self.publisher_confirms = publisher_confirms
        self.on_return_raises = on_return_raises
        self._publish_seq = 0
        self._close_notified = False
        self._returned: deque[ReturnedMessage] = deque(maxlen=_MAX_RETURNED)
        self.close_callbacks.add(self._set_closed_callback)

    # ------------------------------------------------------------------ state
    @property
    def is_initialized(self) -> bool:
        return self._channel is not None

    @property
    def is_closed(self) -> bool:
        raw = self._channel
        return raw is None or self._closed.done() or not raw.is_open

    def closed(self) -> Any:
        """Resolves (True) when the channel is closed; cancelling the waiter does not affect it."""
        return asyncio.shield(self._closed)

    @property
    def number(self) -> int | None:
        raw = self._channel
        return self._channel_number if raw is None else raw.channel_id

    @property
    def channel(self) -> Any:
        """The underlying mmate_fast channel (deprecated in aio-pika too)."""
        if self._channel is None:
            raise ChannelInvalidStateError
        return self._channel

    def __str__(self) -> str:
        return f"{self.number or 'Not initialized channel'}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} #{self}>"

    async def get_underlay_channel(self) -> Any:
        """The open mmate_fast channel under this one (ChannelInvalidStateError if not open)."""
        raw = self._channel
        if raw is None:
            raise ChannelInvalidStateError("Channel was not opened")
        if not raw.is_open or self._closed.done():
            raise ChannelInvalidStateError(f"{self!r} closed")
        return raw

    # ------------------------------------------------------------------ lifecycle
    async def _open(self) -> None:
        transport = self._connection.transport
        if transport is None:
            raise ChannelInvalidStateError("No active transport in channel")
        try:
            raw = await transport.channel(publisher_confirms=self.publisher_confirms)
        except errors.MmateError as error:
            raise_translated(error, self)
        raw.on_return = self._on_return
        if hasattr(raw, "on_close"):
            raw.on_close = self._on_raw_close
        self._channel = raw
        self.default_exchange = self.EXCHANGE_CLASS(channel=self, name="", type=ExchangeType.DIRECT,
                                                     arguments=None, auto_delete=False, durable=False,
                                                     internal=False, passive=False)
        if self._closed.done():
            self._closed = asyncio.get_running_loop().create_future()
        self._close_notified = False
        self._connection._channel_opened(self)

    async def initialize(self, timeout: TimeoutType = None) -> None:
        if self.is_initialized:
            raise RuntimeError("Already initialized")
        if self._closed.done():
            raise RuntimeError("Can't initialize closed channel")
        await self._open()

    async def reopen(self) -> None:
        await self._open()

    async def close(self, exc: BaseException | None = None) -> None:
        raw = self._channel
        if raw is None:
            log.warning("Channel not opened")
            return
        if raw.is_open:
            await raw.close()
        self._mark_closed(ChannelClosed(None, None))

    def _mark_closed(self, exc: BaseException | None) -> None:
        """Tell ``close_callbacks`` once (aio-pika passes ``ChannelClosed(None, None)`` on a close by
        the client, the broker's error otherwise)."""
        if not self._close_notified and not self._closed.done():
            self._close_notified = True
            self.close_callbacks(exc)

    def _on_raw_close(self, raw: Any, exc: BaseException) -> None:
        if isinstance(exc, errors.ChannelClosedError) and exc.reply_code == 200:
            self._mark_closed(ChannelClosed(None, None))
        else:
            self._mark_closed(translate(exc, self))

    async def _set_closed_callback(self, _: Any, exc: BaseException | None) -> None:
        if not self._closed.done():
            self._closed.set_result(True)

    def _on_return(self, delivery: Any) -> None:
        message = ReturnedMessage(delivery, True, self._channel, self)
        if self.publisher_confirms:
            self._returned.append(message)
        self.return_callbacks(message)

    def _take_returned(self) -> ReturnedMessage | None:
        return self._returned.popleft() if self._returned else None

    def _next_publish_tag(self) -> int:
        self._publish_seq += 1
        return self._publish_seq

    def _consumer_cancelled(self, consumer_tag: str) -> None:
        log.warning("consumer %r cancelled by the broker (its queue was deleted?)", consumer_tag)

    # ------------------------------------------------------------------ topology
    async def declare_exchange(self, name: str, type: ExchangeType | str = ExchangeType.DIRECT, *,
                               durable: bool = False, auto_delete: bool = False, internal: bool = False,
                               passive: bool = False, arguments: Arguments = None,
                               timeout: TimeoutType = None) -> Exchange:
        """Declare an exchange (``passive=True``: check it exists: ChannelNotFoundEntity if not)."""
        exchange = self.EXCHANGE_CLASS(channel=self, name=name, type=type, durable=durable,
                                       auto_delete=auto_delete, internal=internal, passive=passive,
                                       arguments=arguments)
        await exchange.declare(timeout=timeout)
        return exchange

    async def get_exchange(self, name: str, *, ensure: bool = True) -> Exchange:
        """The exchange ``name``: checked with a passive declare (``ensure=False``: not checked)."""
        if ensure:
            return await self.declare_exchange(name=name, passive=True)
        return self.EXCHANGE_CLASS(channel=self, name=name, durable=False, auto_delete=False, internal=False,
                                   passive=True, arguments=None)

    async def declare_queue(self, name: str | None = None, *, durable: bool = False, exclusive: bool = False,
                            passive: bool = False, auto_delete: bool = False, arguments: Arguments = None,
                            timeout: TimeoutType = None) -> Queue:
        """Declare a queue (no name: a server-named one, its name in ``queue.name``)."""
        queue = self.QUEUE_CLASS(channel=self, name=name, durable=durable, exclusive=exclusive,
                                 auto_delete=auto_delete, arguments=arguments, passive=passive)
        await queue.declare(timeout=timeout)
        self.close_callbacks.add(queue.close_callbacks, weak=True)
        return queue

    async def get_queue(self, name: str, *, ensure: bool = True) -> Queue:
        """The queue ``name``: checked with a passive declare (``ensure=False``: not checked)."""
        if ensure:
            return await self.declare_queue(name=name, passive=True)
        return self.QUEUE_CLASS(channel=self, name=name, durable=False, exclusive=False, auto_delete=False,
                                arguments=None, passive=True)

    async def set_qos(self, prefetch_count: int = 0, prefetch_size: int = 0, global_: bool = False,
                      timeout: TimeoutType = None, all_channels: bool | None = None) -> Any:
        if all_channels is not None:
            global_ = all_channels
        raw = await self.get_underlay_channel()
        try:
            await raw.basic_qos(prefetch_count, prefetch_size, global_=global_, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self)
        return spec.Basic.QosOk()

    async def queue_delete(self, queue_name: str, timeout: TimeoutType = None, if_unused: bool = False,
                           if_empty: bool = False, nowait: bool = False) -> Any:
        raw = await self.get_underlay_channel()
        try:
            count = await raw.queue_delete(queue_name, if_unused=if_unused, if_empty=if_empty,
                                           timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self)
        return None if nowait else spec.Queue.DeleteOk(message_count=count)

    async def exchange_delete(self, exchange_name: str, timeout: TimeoutType = None, if_unused: bool = False,
                              nowait: bool = False) -> Any:
        raw = await self.get_underlay_channel()
        try:
            await raw.exchange_delete(exchange_name, if_unused=if_unused, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self)
        return None if nowait else spec.Exchange.DeleteOk()

    def transaction(self) -> Transaction:
        """An AMQP transaction (channels without publisher confirms only, as in aio-pika)."""
        if self.publisher_confirms:
            raise RuntimeError("Cannot create transaction when publisher confirms are enabled")
        return Transaction(self)

    async def flow(self, active: bool = True) -> Any:
        """Ask the broker to pause (False) or resume (True) deliveries on this channel (channel.flow;
        RabbitMQ refuses ``active=False`` with 540 NOT_IMPLEMENTED, as it does for aio-pika)."""
        raw = await self.get_underlay_channel()
        try:
            return await channel_rpc(raw, spec.Channel.Flow(active=active), spec.Channel.FlowOk, None)
        except errors.MmateError as error:
            raise_translated(error, self)


__all__ = ("Channel",)
