"""The stream connection reads the socket straight into one buffer (asyncio.BufferedProtocol) and
parses frames in place: frames split across reads at any byte, many frames in one read, a frame
larger than the buffer (it grows) and the unparsed tail moved to the front all give the same frames."""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Any

from mmate_fast.transports.streams import _codec as c
from mmate_fast.transports.streams.connection import StreamConnection


class _Sub:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def _on_chunk(self, data: Any, pos: int, end: int) -> None:
        self.chunks.append(bytes(data[pos:end]))


def _deliver(sid: int, payload: bytes) -> bytes:
    return c.command(c.DELIVER, bytes((sid,)) + payload)


def _feed(conn: StreamConnection, stream: bytes, rng: random.Random) -> None:
    pos = 0
    while pos < len(stream):
        room = conn.get_buffer(-1)
        assert len(room) > 0
        k = min(len(room), len(stream) - pos, rng.choice([1, 3, 7, 100, 4096, 70_000, 1 << 20]))
        room[:k] = stream[pos:pos + k]
        conn.buffer_updated(k)
        pos += k


async def test_frames_come_out_whole_however_the_bytes_arrive() -> None:
    rng = random.Random(7)
    payloads = [bytes([i % 251]) * size for i, size in
                enumerate([0, 1, 48, 1000, 300_000, 5 << 20, 10, 2 << 20, 123_457, 64])]
    stream = b"".join(_deliver(5, p) + c.HEARTBEAT_FRAME for p in payloads)
    for seed in range(4):
        rng.seed(seed)
        conn = StreamConnection(asyncio.get_running_loop(), 5.0)
        sub = _Sub()
        conn._subscriptions[5] = sub
        _feed(conn, stream, rng)
        assert sub.chunks == payloads
        assert conn._start == conn._end == 0 and conn._need == 0


async def test_a_frame_that_says_it_has_no_key_closes_the_connection() -> None:
    conn = StreamConnection(asyncio.get_running_loop(), 5.0)
    failed: list[BaseException] = []
    conn._fail = failed.append  # type: ignore[method-assign]
    room = conn.get_buffer(-1)
    room[:4] = struct.pack(">I", 2)
    room[4:6] = b"\x00\x00"
    conn.buffer_updated(6)
    assert len(failed) == 1 and "no key" in str(failed[0])
