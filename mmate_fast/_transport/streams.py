"""The stream transport interface: what the Mmate level (mmate_fast.messaging.streams) uses of a
RabbitMQ Streams connection (mmate_fast.transports.streams implements it), so the messaging core
reaches the broker only through an interface, as it does for queues (ARCHITECTURE.md's layers).

Offsets (``OffsetSpec``): ``"first"``, ``"last"`` (the last chunk), ``"next"`` (only new records), an
absolute offset (int >= 0) or a timezone-aware datetime (the first chunk written at or after it).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

#: where a subscription starts
OffsetSpec = str | int | datetime


class StreamSubscriptionLike(Protocol):
    """One subscription: chunks go to its callback; ``release`` gives one chunk of credit back."""

    stream: str
    #: None while open; the exception that ended it otherwise
    error: BaseException | None
    _on_lost: Callable[[BaseException], Any] | None
    #: reads a delivered chunk (data, pos, end, min offset) -> (first offset, timestamp ms, records
    #: left for the callback); the receiver may set its own that handles records itself
    read_chunk: Callable[[Any, int, int, int], tuple[int, int, list[bytes]]]

    def release(self, chunks: int = 1) -> None: ...
    async def close(self) -> None: ...


class StreamProducerLike(Protocol):
    """A publisher on one stream: messages appended to a batch, batches sent with pipelined confirms."""

    stream: str
    pending: int
    in_flight: int
    max_in_flight: int
    confirmed: int
    connection: Any

    def append(self, properties: bytes, body: bytes, exchange: str = "", routing_key: str = "") -> int: ...
    def send(self) -> Any: ...
    async def wait_room(self) -> None: ...
    async def flush(self, timeout: float | None = None) -> None: ...
    async def close(self) -> None: ...


class StreamConnectionLike(Protocol):
    """A stream-protocol connection."""

    timeout: float

    @property
    def is_closed(self) -> bool: ...
    async def create_stream(self, stream: str, arguments: Mapping[str, Any] | None = None, *,
                            exist_ok: bool = True) -> bool: ...
    async def delete_stream(self, stream: str, *, missing_ok: bool = True) -> bool: ...
    async def query_offset(self, reference: str, stream: str) -> int | None: ...
    def store_offset(self, reference: str, stream: str, offset: int) -> None: ...
    async def producer(self, stream: str, *, reference: str = "", max_in_flight: int = 20_000,
                       sub_entries: bool = False) -> Any: ...
    async def subscribe(self, stream: str, on_chunk: Any, *, offset: OffsetSpec = "next", credit: int = 8,
                        properties: Mapping[str, str] | None = None) -> Any: ...
    async def close(self, timeout: float = 5.0) -> None: ...


__all__ = ["OffsetSpec", "StreamConnectionLike", "StreamProducerLike", "StreamSubscriptionLike"]
