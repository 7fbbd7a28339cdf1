"""The transport interface: what the RabbitMQ client (mmate_fast.amqp) and the embedded in-memory
broker (mmate_fast.transports.memory) both provide, so that everything above them — and one behaviour
test suite — runs unchanged on either.

It is AMQP 0-9-1's model: a Connection opens Channels; a Channel declares exchanges and queues, binds
them, publishes, consumes and acknowledges. Publishing and acking are synchronous and buffered
(one socket write per loop turn); everything that waits for the broker is ``async`` and takes a
timeout. Errors are the named exceptions of mmate_fast.errors: a channel-level failure (404, 406, ...)
raises on the call that caused it and closes only that channel (a plain channel stays closed and
every later call on it raises; ``ChannelPool`` and the RabbitMQ ``RobustChannel`` reopen it by
themselves). An argument the broker would refuse (a name over 255 bytes, a bad property) raises
InvalidArgumentError before anything is sent, and the channel stays open (the rules:
:mod:`mmate_fast._checks` for names, :mod:`mmate_fast._transport.properties` for properties).

This module sits below both the AMQP client and the transports (ARCHITECTURE.md's layers), so neither
imports the other's layer for it; users import these names from :mod:`mmate_fast.transports`.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mmate_fast._ext import load

_frames = load("frames")

BasicProperties = _frames.BasicProperties
Delivery = _frames.Delivery

#: Called for each delivery. A coroutine function is run as a task per delivery; a plain function is
#: called inline from the reader (fastest; it must not block).
ConsumerCallback = Callable[[Any], Awaitable[None] | None]
#: Called when the broker cancels a consumer (queue deleted, ...), with the consumer tag.
CancelCallback = Callable[[str], None]
#: Called with the Delivery (kind KIND_RETURN) of an unroutable mandatory publish.
ReturnCallback = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class QueueDeclareOk:
    """Result of queue_declare: the (possibly server-named) queue and its counts."""

    queue: str
    message_count: int
    consumer_count: int


@runtime_checkable
class Channel(Protocol):
    """One AMQP channel (or its in-memory equivalent)."""

    channel_id: int

    @property
    def is_open(self) -> bool: ...

    @property
    def publisher_confirms(self) -> bool: ...

    on_return: ReturnCallback | None

    # -- topology ---------------------------------------------------------------------------
    async def exchange_declare(self, exchange: str, exchange_type: str = "direct", *,
                               passive: bool = False, durable: bool = False, auto_delete: bool = False,
                               internal: bool = False, arguments: Mapping[str, Any] | None = None,
                               timeout: float | None = None) -> None: ...

    async def exchange_delete(self, exchange: str, *, if_unused: bool = False,
                              timeout: float | None = None) -> None: ...

    async def exchange_bind(self, destination: str, source: str, routing_key: str = "",
                            arguments: Mapping[str, Any] | None = None,
                            timeout: float | None = None) -> None: ...

    async def exchange_unbind(self, destination: str, source: str, routing_key: str = "",
                              arguments: Mapping[str, Any] | None = None,
                              timeout: float | None = None) -> None: ...

    async def queue_declare(self, queue: str = "", *, passive: bool = False, durable: bool = False,
                            exclusive: bool = False, auto_delete: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            timeout: float | None = None) -> QueueDeclareOk: ...

    async def queue_delete(self, queue: str, *, if_unused: bool = False, if_empty: bool = False,
                           timeout: float | None = None) -> int:
        """Returns the number of messages deleted with the queue."""
        ...

    async def queue_bind(self, queue: str, exchange: str, routing_key: str = "",
                         arguments: Mapping[str, Any] | None = None,
                         timeout: float | None = None) -> None: ...

    async def queue_unbind(self, queue: str, exchange: str, routing_key: str = "",
                           arguments: Mapping[str, Any] | None = None,
                           timeout: float | None = None) -> None: ...

    async def queue_purge(self, queue: str, *, timeout: float | None = None) -> int:
        """Returns the number of messages purged."""
        ...

    # -- flow -------------------------------------------------------------------------------
    async def basic_qos(self, prefetch_count: int = 0, prefetch_size: int = 0, *,
                        global_: bool = False, timeout: float | None = None) -> None: ...

    async def confirm_select(self, *, timeout: float | None = None) -> None:
        """Turn on publisher confirms for this channel (idempotent)."""
        ...

    # -- publish ----------------------------------------------------------------------------
    def publish_nowait(self, body: bytes, exchange: str = "", routing_key: str = "",
                       properties: Any = None, *, mandatory: bool = False,
                       confirm_value: Any = True) -> asyncio.Future[Any] | None:
        """Queue a publish; written at the end of this loop turn together with everything else queued.

        Without confirms returns None. With confirms returns a future that resolves with
        ``confirm_value`` (True unless given: e.g. the message id the caller hands back) on basic.ack
        and raises PublishNackedError on basic.nack (PublishReturnedError if mandatory and unroutable,
        the broker's ChannelClosedError if it refused the publish and closed the channel).
        Raises InvalidArgumentError (nothing sent) for a name over 255 bytes or not UTF-8, or
        properties the broker would refuse (priority outside 0-255, expiration not a non-negative
        integer string, delivery_mode not 1/2, ...); pre-encoded property bytes are sent as they are.
        Raises ChannelClosedError / ConnectionClosedError at once if the channel is closed.
        No back-pressure: for a long loop, ``await publish(...)`` or ``await drain()`` now and then.
        """
        ...

    async def publish(self, body: bytes, exchange: str = "", routing_key: str = "",
                      properties: Any = None, *, mandatory: bool = False,
                      timeout: float | None = None) -> None:
        """Publish, waiting for write-buffer room (and for an unblocked connection); with confirms
        also wait for the broker's ack. Raises PublishNackedError / PublishReturnedError."""
        ...

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        ...

    async def wait_for_confirms(self, timeout: float | None = None) -> None:
        """Wait until every publish so far is acked or nacked (confirm mode only)."""
        ...

    # -- consume ----------------------------------------------------------------------------
    async def basic_consume(self, queue: str, callback: ConsumerCallback, *, consumer_tag: str = "",
                            no_ack: bool = False, exclusive: bool = False,
                            arguments: Mapping[str, Any] | None = None,
                            on_cancel: CancelCallback | None = None,
                            timeout: float | None = None) -> str:
        """Start a consumer; returns its consumer tag (generated when not given)."""
        ...

    async def basic_cancel(self, consumer_tag: str, *, timeout: float | None = None) -> None: ...

    async def basic_get(self, queue: str, *, no_ack: bool = False,
                        timeout: float | None = None) -> Any | None:
        """One message (a Delivery of kind KIND_GET_OK) or None when the queue is empty."""
        ...

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> bool | None:
        """Settle a delivery (written with this loop turn's other frames). Returns None; a
        RobustChannel returns False when the tag belongs to a channel that is gone (dropped, not
        sent: the broker redelivers that message), so callers can count those apart."""
        ...

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> bool | None:
        """As ``basic_ack`` (False: dropped as stale)."""
        ...

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> bool | None:
        """As ``basic_ack`` (False: dropped as stale)."""
        ...

    async def close(self, timeout: float | None = None) -> None: ...


@runtime_checkable
class Connection(Protocol):
    """A connection to a broker (RabbitMQ or the embedded one)."""

    @property
    def is_closed(self) -> bool: ...

    async def channel(self, *, publisher_confirms: bool = False,
                      timeout: float | None = None) -> Channel: ...

    async def close(self, timeout: float | None = None) -> None: ...

    async def __aenter__(self) -> Connection: ...

    async def __aexit__(self, *exc: object) -> None: ...


__all__ = [
    "BasicProperties",
    "CancelCallback",
    "Channel",
    "Connection",
    "ConsumerCallback",
    "Delivery",
    "QueueDeclareOk",
    "ReturnCallback",
]
