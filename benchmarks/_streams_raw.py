"""A minimal raw client of RabbitMQ's stream protocol (port 5552): the zero-cost row of ``run.py
streams-publish`` / ``streams-consume``.

Publish: pre-encoded Publish frames (one ready AMQP 1.0 message, repeated; per message only its
publishing id is patched in), a window of unconfirmed messages, confirms counted. Consume: Deliver
frames counted by their chunk headers (no record is split or decoded), one credit back per chunk.
Written from the protocol's documentation (PROTOCOL.adoc of rabbitmq_stream), nothing else.
"""
from __future__ import annotations

import asyncio
import struct
from typing import Any

_HDR = struct.Struct(">IHH")
_REQ = struct.Struct(">IHHI")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_PUB = struct.Struct(">IHHBI")


def _s(v: str) -> bytes:
    b = v.encode()
    return _U16.pack(len(b)) + b


class RawStream(asyncio.Protocol):
    """Handshake, one publisher (id 0) or one subscription (id 0), counters."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.t: Any = None
        self.buf = bytearray()
        self.corr = 0
        self.waiting: dict[int, asyncio.Future[int]] = {}
        self.tuned: asyncio.Future[None] = self.loop.create_future()
        self.confirmed = 0
        self.room: asyncio.Future[None] | None = None
        self.window = 0
        self.sent = 0
        self.records = 0
        self.target = 0
        self.done: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        if self.buf:  # a frame spans reads: append in place (``bytes + bytes`` re-copied the whole
            self.buf += data  # partial chunk at every read: quadratic in a chunk's size)
            buf: Any = self.buf
        else:
            buf = data
        pos, n = 0, len(buf)
        while n - pos >= 4:
            size = _U32.unpack_from(buf, pos)[0]
            if pos + 4 + size > n:
                break
            key = _U16.unpack_from(buf, pos + 4)[0]
            body = pos + 8
            if key == 0x03:  # publish confirm: count ids
                self.confirmed += _U32.unpack_from(buf, body + 1)[0]
                room = self.room
                if room is not None and not room.done() and self.sent - self.confirmed <= self.window:
                    room.set_result(None)
                if self.confirmed >= self.target and not self.done.done():
                    self.done.set_result(None)
            elif key == 0x08:  # deliver: chunk type at +2, records at +5 (after subscription id)
                if buf[body + 2] == 0:
                    self.records += _U32.unpack_from(buf, body + 5)[0]
                self.t.write(b"\x00\x00\x00\x07\x00\x09\x00\x01\x00\x00\x01")  # credit 1 for subscription 0
                if self.records >= self.target and not self.done.done():
                    self.done.set_result(None)
            elif key == 0x14:  # tune: agree
                self.t.write(buf[pos:pos + 4 + size])
                self.tuned.set_result(None)
            elif key & 0x8000:
                corr, code = _U32.unpack_from(buf, body)[0], _U16.unpack_from(buf, body + 4)[0]
                fut = self.waiting.pop(corr, None)
                if fut is not None:
                    fut.set_result(code)
            pos += 4 + size
        if buf is self.buf:
            del buf[:pos]
        elif pos < n:
            self.buf = bytearray(buf[pos:])

    async def request(self, key: int, content: bytes) -> int:
        self.corr += 1
        fut = self.waiting[self.corr] = self.loop.create_future()
        self.t.write(_REQ.pack(8 + len(content), key, 1, self.corr) + content)
        return await fut

    async def handshake(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> None:
        await self.request(0x11, _U32.pack(0))
        await self.request(0x12, b"")
        secret = f"\0{user}\0{password}".encode()
        await self.request(0x13, _s("PLAIN") + _U32.pack(len(secret)) + secret)
        await self.tuned
        assert await self.request(0x15, _s(vhost)) == 1

    async def publish(self, stream: str, message: bytes, n: int, batch: int, window: int) -> None:
        """Publish ``n`` copies of ``message`` in frames of ``batch``, at most ``window`` unconfirmed."""
        assert await self.request(0x01, b"\x00" + _s("") + _s(stream)) == 1
        self.target, self.window = n, window
        entry = len(message) + 12
        one = b"\x00" * 8 + _U32.pack(len(message)) + message
        frame = bytearray(_PUB.pack(0, 2, 1, 0, 0) + one * batch)
        pid = 1
        while self.sent < n:
            k = min(batch, n - self.sent)
            size = 9 + k * entry
            _PUB.pack_into(frame, 0, size, 2, 1, 0, k)
            for i in range(k):
                _U64.pack_into(frame, 13 + i * entry, pid + i)
            pid += k
            self.t.write(bytes(frame[:4 + size]))  # a copy: the template is patched again next turn
            self.sent += k
            if self.sent - self.confirmed > window:
                self.room = self.loop.create_future()
                await self.room
        await self.done

    async def consume(self, stream: str, n: int, credit: int = 10) -> None:
        """Read from the first offset until ``n`` records arrived."""
        self.target = n
        spec = _U16.pack(1)  # first
        assert await self.request(0x07, b"\x00" + _s(stream) + spec + _U16.pack(credit) + _U32.pack(0)) == 1
        await self.done


async def connect(host: str = "127.0.0.1", port: int = 5552) -> RawStream:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(RawStream, host, port)
    await proto.handshake()
    return proto
