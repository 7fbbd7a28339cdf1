"""A stream publisher: batches of messages in Publish frames, confirmed by publishing id.

Messages are appended to the current batch (``append``: our AMQP path's properties + body, turned
into the AMQP 1.0 message RabbitMQ stores, in one compiled pass; ``append_message``: ready AMQP 1.0
bytes); ``send()`` writes the batch (several Publish frames when it exceeds the connection's
frame_max) and returns a future that resolves once the broker confirmed every message of it, or
fails with StreamPublishError when it refused any. With ``sub_entries`` each Publish frame's messages
go as one sub-entry batch: one publishing id (and one confirm, and one deduplication unit) for all
of them, far less work per message for the broker; every reader still gets each record at its own
offset. Batches are pipelined: nothing waits for an
earlier batch's confirms unless more than ``max_in_flight`` messages are unconfirmed (``wait_room``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from typing import Any

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.transports.streams import _codec as c

_wire = load("streamwire")
_append_message = _wire.append_message
_sub_batch = _wire.sub_batch
_HEAD = c.PUBLISH_HEAD.size


class StreamProducer:
    """Publishes to one stream. Create with ``await StreamConnection.producer(stream)``."""

    def __init__(
        self, conn: Any, publisher_id: int, stream: str, reference: str, next_id: int, max_in_flight: int,
        sub_entries: bool = False,
    ) -> None:
        self.connection = conn
        self.publisher_id = publisher_id
        self.stream = stream
        self.reference = reference
        #: the publishing id the next appended message gets
        self.next_id = next_id
        self.max_in_flight = max_in_flight
        self.confirmed = 0
        self._batch_first = next_id
        self._frames: list[tuple[bytearray, int]] = []  # (Publish frame, messages in it)
        self._confirmed_to = next_id - 1
        #: a Publish frame is closed past this size (the connection's frame_max, with room)
        self._limit = conn.frame_max - 64
        self._buf = self._new_frame()
        self._in_frame = 0
        #: (last publishing id of a batch, its future), oldest first
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._room: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closed = False
        #: send each Publish frame's messages as one sub-entry batch (one publishing id, the first)
        self.sub_entries = sub_entries
        #: first publishing id of a sub-entry batch in flight -> its last message's id
        self._sub_last: dict[int, int] = {}

    def _new_frame(self) -> bytearray:
        buf = bytearray(_HEAD)
        return buf

    @property
    def pending(self) -> int:
        """Messages appended but not sent."""
        return self.next_id - self._batch_first

    @property
    def in_flight(self) -> int:
        """Messages sent and not yet confirmed."""
        waiting = self._waiting
        return (waiting[-1][0] - self._confirmed_to) if waiting else 0

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise errors.StreamError(f"producer on stream {self.stream!r} is closed")

    def _roll(self) -> None:
        """Close the current frame when it is over the connection's frame_max (leaving room)."""
        self._frames.append((self._buf, self._in_frame))
        self._buf = self._new_frame()
        self._in_frame = 0

    def append(self, properties: bytes, body: bytes, exchange: str = "", routing_key: str = "") -> int:
        """Add one message (AMQP 0-9-1 basic properties, pre-encoded, and body) to the batch, stored as
        RabbitMQ stores that publish; returns its publishing id. ValueError for properties that do
        not decode (nothing added)."""
        if self._error is not None or self._closed:
            self._check()
        buf = self._buf
        before = len(buf)
        pid = self.next_id
        _append_message(buf, pid, properties, body, exchange, routing_key)
        if len(buf) > self._limit and self._in_frame:
            tail = bytes(buf[before:])
            del buf[before:]
            self._roll()
            self._buf += tail
        self._in_frame += 1
        self.next_id = pid + 1
        return pid

    def append_typed(self, appender: Any, it: Iterator[Any], max_count: int, ids: list[Any]) -> bool:
        """Append up to ``max_count`` typed messages from ``it`` through ``appender`` (a
        ``streamwire.TypedAppender``: envelope, route and stored message built in one compiled loop),
        their ids to ``ids``; a new Publish frame starts where one would pass frame_max. True when
        ``it`` is exhausted. An error leaves the messages before the failing one appended."""
        if self._error is not None or self._closed:
            self._check()
        left = max_count
        while left > 0:
            before = len(ids)
            try:
                n, done, carry = appender.fill(
                    self._buf, self.next_id, it, left, self._limit, self._in_frame, ids)
            except BaseException:
                n = len(ids) - before
                self._in_frame += n
                self.next_id += n
                raise
            self._in_frame += n
            self.next_id += n
            left -= n
            if carry is None:
                return bool(done)
            self._roll()
            self.append(carry[0], carry[1], carry[2], carry[3])
            ids.append(carry[4])
            left -= 1
        return False

    def append_message(self, message: bytes) -> int:
        """Add one ready message (AMQP 1.0 bytes, or any bytes for readers that expect them)."""
        if self._error is not None or self._closed:
            self._check()
        if len(self._buf) + len(message) + 12 > self._limit and self._in_frame:
            self._roll()
        pid = self.next_id
        buf = self._buf
        buf += c.U64.pack(pid)
        buf += c.U32.pack(len(message))
        buf += message
        self._in_frame += 1
        self.next_id = pid + 1
        return pid

    def send(self) -> asyncio.Future[None]:
        """Write the batch; the future resolves when all of it is confirmed (at once when empty)."""
        self._check()
        loop = self.connection.loop
        fut: asyncio.Future[None] = loop.create_future()
        if self.next_id == self._batch_first:
            if self._waiting:  # nothing new: the caller waits for what is in flight
                return self._waiting[-1][1]
            fut.set_result(None)
            return fut
        if self._in_frame:
            self._roll()
        frames, self._frames = self._frames, []
        first = self._batch_first
        for buf, count in frames:
            if self.sub_entries and count > 1:
                buf, first_id, last_id, _ = _sub_batch(buf, _HEAD)
                self._sub_last[first_id] = last_id
                count = 1
            c.PUBLISH_HEAD.pack_into(buf, 0, len(buf) - 4, c.PUBLISH, c.VERSION, self.publisher_id, count)
            self.connection._write(buf)
        if not self._waiting:
            self._confirmed_to = first - 1
        self._waiting.append((self.next_id - 1, fut))
        self._batch_first = self.next_id
        return fut

    async def wait_room(self) -> None:
        """Wait while more than ``max_in_flight`` messages are unconfirmed (back-pressure)."""
        while self.in_flight > self.max_in_flight:
            self._check()
            if self._room is None or self._room.done():
                self._room = self.connection.loop.create_future()
            await self._room

    async def flush(self, timeout: float | None = None) -> None:
        """Send what is appended and wait until everything sent is confirmed."""
        fut = self.send()
        async with asyncio.timeout(timeout or self.connection.timeout):
            await fut
        while self._waiting:
            async with asyncio.timeout(timeout or self.connection.timeout):
                await self._waiting[-1][1]

    # ------------------------------------------------------------------ broker side
    def _on_confirm(self, pos: int, count: int, data: bytes | bytearray) -> None:
        if not count:
            return
        # one publisher's ids are confirmed in the order they were written: the last is the highest
        # (the first too, in case a broker ever sent them the other way round)
        unpack = c.U64.unpack_from
        sub_last = self._sub_last
        if sub_last:  # a sub-entry batch's id confirms all its messages
            top = 0
            for i in range(count):
                first = unpack(data, pos + 8 * i)[0]
                last = sub_last.pop(first, first)
                self.confirmed += last - first + 1
                top = max(top, last)
        else:
            top = max(unpack(data, pos)[0], unpack(data, pos + 8 * (count - 1))[0])
            self.confirmed += count
        if top > self._confirmed_to:
            self._confirmed_to = top
        waiting = self._waiting
        while waiting and waiting[0][0] <= top:
            _, fut = waiting.popleft()
            if not fut.done():
                fut.set_result(None)
        room = self._room
        if room is not None and not room.done() and self.in_flight <= self.max_in_flight:
            room.set_result(None)

    def _on_error(self, failed: list[tuple[int, int]]) -> None:
        for pub_id, code in failed:
            for last, fut in self._waiting:
                if pub_id <= last:
                    if not fut.done():
                        text = c.RESPONSE_TEXT.get(code, f"code 0x{code:02x}")
                        fut.set_exception(
                            errors.StreamPublishError(
                                f"stream {self.stream!r} refused message {pub_id}: {text}", code
                            )
                        )
                    break
        self._on_confirm_ids([pid for pid, _ in failed])

    def _on_confirm_ids(self, ids: list[int]) -> None:
        if ids:
            data = b"".join(c.U64.pack(i) for i in ids)
            confirmed = self.confirmed
            self._on_confirm(0, len(ids), data)
            self.confirmed = confirmed

    def _connection_lost(self, exc: BaseException) -> None:
        self._error = exc
        while self._waiting:
            _, fut = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: a batch nobody awaits must not log
        if self._room is not None and not self._room.done():
            self._room.set_exception(exc)
            self._room.exception()

    async def close(self) -> None:
        """Flush what is pending, then delete the publisher on the broker."""
        if self._closed:
            return
        try:
            if self._error is None:
                await self.flush()
        finally:
            self._closed = True
            await self.connection._delete_producer(self.publisher_id)
