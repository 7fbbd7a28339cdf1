"""A stream subscription: delivered chunks handed on in order, credit given back as they are done.

The broker sends a chunk (a batch of records as it was written) per unit of credit. Each chunk is
split into its records by the compiled ``split_chunk`` (records before the requested start offset
left out) and handed to ``on_chunk(subscription, first_offset, timestamp_ms, records)`` (which may run before
``subscribe`` returns). Credit for one more chunk
goes back when the receiver calls :meth:`StreamSubscription.release` (so a slow consumer holds at most
``credit`` chunks in memory), or at once when ``auto_credit`` is on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mmate_fast import errors
from mmate_fast._ext import load

_split_chunk = load("streamwire").split_chunk
log = logging.getLogger("mmate_fast.streams")

ChunkCallback = Callable[["StreamSubscription", int, int, list[bytes]], Any]


class StreamSubscription:
    """One subscription. Create with ``await StreamConnection.subscribe(stream, on_chunk, ...)``."""

    def __init__(self, conn: Any, sid: int, stream: str, on_chunk: ChunkCallback, start: int) -> None:
        self.connection = conn
        self.subscription_id = sid
        self.stream = stream
        self._on_chunk_cb = on_chunk
        #: the offset of the next record to hand on (records below it are skipped)
        self.next_offset = start
        self.chunks = 0
        self.records = 0
        #: None while open; the exception that ended it otherwise
        self.error: BaseException | None = None
        self.auto_credit = False
        self._on_lost: Callable[[BaseException], Any] | None = None
        #: ``split_chunk`` or the receiver's own reader with its signature (which may handle
        #: records itself and give back only those left for ``on_chunk``, from the offset it returns)
        self.read_chunk: Callable[[Any, int, int, int], tuple[int, int, list[bytes]]] = _split_chunk

    def _on_chunk(self, data: bytes | bytearray, pos: int, end: int) -> None:
        first, ts, records = self.read_chunk(data, pos, end, self.next_offset)
        self.chunks += 1
        if records:
            self.records += len(records)
            self.next_offset = first + len(records)
        elif first > self.next_offset:
            self.next_offset = first
        if self.auto_credit:
            self.connection.credit(self.subscription_id, 1)
        try:
            self._on_chunk_cb(self, first, ts, records)
        except Exception:
            log.exception(
                "chunk callback of the subscription to %r failed (records %d..%d skipped)",
                self.stream,
                first,
                first + len(records) - 1,
            )

    def release(self, chunks: int = 1) -> None:
        """Give the broker credit for ``chunks`` more chunks (call once per chunk processed)."""
        if self.error is None:
            self.connection.credit(self.subscription_id, chunks)

    def _connection_lost(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            if self._on_lost is not None:
                self._on_lost(exc)

    async def close(self) -> None:
        """Unsubscribe (nothing more is delivered)."""
        if self.error is None:
            self.error = errors.StreamError(f"subscription to {self.stream!r} closed")
        await self.connection._unsubscribe(self.subscription_id)
