"""Poison messages: content headers that frame correctly but whose properties (or routing key) our
decoder cannot turn into Python values, as RabbitMQ forwards them (issue 7 item 1).

The bytes are built here by hand with ``struct`` (not with our codec), so they are an independent
oracle for the frame reader and can be sent to a real broker by :func:`publish_poison`.
"""
from __future__ import annotations

import asyncio
import struct
from typing import Any

POISON_KINDS: tuple[str, ...] = ("deep-table", "timestamp-ms", "timestamp-2^63",
                                 "header-key-not-utf8", "message-id-not-utf8", "content-type-not-utf8",
                                 "type-not-utf8", "routing-key-not-utf8")

_NOT_UTF8 = b"\xff\xfe"
_RK_SUFFIX = b"." + _NOT_UTF8
_DEPTH = 70  # > the decoder's limit of 64 nested tables
# property flag bits (AMQP 0-9-1 basic class)
_CONTENT_TYPE, _HEADERS, _DELIVERY_MODE, _MESSAGE_ID, _TYPE = 0x8000, 0x2000, 0x1000, 0x0080, 0x0020


def _table(entries: bytes) -> bytes:
    return struct.pack(">I", len(entries)) + entries


def _key(name: bytes) -> bytes:
    return bytes([len(name)]) + name


def _sstr(value: bytes) -> bytes:
    return bytes([len(value)]) + value


def _deep_table() -> bytes:
    table = _table(b"")
    for _ in range(_DEPTH):
        table = _table(_key(b"d") + b"F" + table)
    return table


def _header_table(entries: bytes) -> bytes:
    return _table(_key(b"ok") + b"S" + struct.pack(">I", 2) + b"hi" + entries)


def _poison_fields(kind: str) -> list[tuple[int, bytes]]:
    """(property flag, value bytes) of ``kind``'s poison."""
    if kind == "deep-table":
        return [(_HEADERS, _deep_table())]
    if kind == "timestamp-ms":  # milliseconds 1.7e12 read as seconds: beyond year 9999
        return [(_HEADERS, _header_table(_key(b"ts") + b"T" + struct.pack(">Q", 1_700_000_000_000)))]
    if kind == "timestamp-2^63":
        return [(_HEADERS, _header_table(_key(b"ts") + b"T" + struct.pack(">Q", 1 << 63)))]
    if kind == "header-key-not-utf8":
        return [(_HEADERS, _header_table(_key(b"k" + _NOT_UTF8) + b"S" + struct.pack(">I", 1) + b"v"))]
    if kind == "message-id-not-utf8":
        return [(_MESSAGE_ID, _sstr(b"m" + _NOT_UTF8))]
    if kind == "content-type-not-utf8":
        return [(_CONTENT_TYPE, _sstr(b"application/" + _NOT_UTF8))]
    if kind == "type-not-utf8":
        return [(_TYPE, _sstr(b"T" + _NOT_UTF8))]
    if kind == "routing-key-not-utf8":
        return []
    raise ValueError(f"unknown poison kind {kind!r}; use one of {', '.join(POISON_KINDS)}")


def poison_properties(kind: str, *, persistent: bool = False) -> bytes:
    """The raw property bytes (flags + values, what follows the 12-byte content-header prefix) of a
    poison message of ``kind``; for ``routing-key-not-utf8`` no properties but ``delivery_mode``.
    ``persistent`` adds ``delivery_mode`` 2 (a transient message does not survive a broker restart)."""
    fields = _poison_fields(kind)
    if persistent:
        fields.append((_DELIVERY_MODE, b"\x02"))
    fields.sort(key=lambda field: -field[0])  # values travel in flag order, highest bit first
    return struct.pack(">H", sum(flag for flag, _ in fields)) + b"".join(value for _, value in fields)


def poison_routing_key(kind: str, routing_key: str) -> bytes:
    """The routing key bytes :func:`publish_poison` sends for ``kind``."""
    rk = routing_key.encode()
    return rk + _RK_SUFFIX if kind == "routing-key-not-utf8" else rk


def _frame(ftype: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def poison_frames(channel: int, kind: str, exchange: str, routing_key: str, body: bytes,
                  frame_max: int = 131072, *, mandatory: bool = True, persistent: bool = False) -> bytes:
    """basic.publish + content header + body frame(s) of a poison message, byte by byte."""
    ex, rk = exchange.encode(), poison_routing_key(kind, routing_key)
    if len(ex) > 255 or len(rk) > 255:
        raise ValueError("exchange or routing key longer than 255 bytes")
    method = b"\x00\x3c\x00\x28\x00\x00" + _sstr(ex) + _sstr(rk) + (b"\x01" if mandatory else b"\x00")
    header = b"\x00\x3c\x00\x00" + struct.pack(">Q", len(body)) + poison_properties(kind, persistent=persistent)
    out = _frame(1, channel, method) + _frame(2, channel, header)
    chunk = frame_max - 8
    for start in range(0, len(body), chunk):
        out += _frame(3, channel, body[start:start + chunk])
    return out


async def publish_poison(connection: Any, kind: str, exchange: str, routing_key: str, body: bytes,
                         *, timeout: float = 10.0, persistent: bool = False) -> None:
    """Publish one poison message of ``kind`` and wait until the broker confirmed it.

    ``connection`` is a ``mmate_fast.amqp.Connection`` (or the ``.connection`` of a
    RobustConnection); ``persistent`` adds ``delivery_mode`` 2. A channel of its own is opened in confirm mode, the frames are written by
    hand (our encoder refuses such values), the publish is mandatory (an unroutable poison message
    raises PublishReturnedError instead of vanishing) and the channel is closed again; other
    channels are not touched.

    For ``routing-key-not-utf8`` the routing key sent is ``routing_key.encode() + b".\\xff\\xfe"``:
    bind the queue with a topic pattern that matches it (e.g. ``routing_key + ".*"`` on a topic
    exchange). Every other kind is sent with ``routing_key`` as it is.
    """
    if kind not in POISON_KINDS:
        raise ValueError(f"unknown poison kind {kind!r}; use one of {', '.join(POISON_KINDS)}")
    channel = await connection.channel(publisher_confirms=True, timeout=timeout)
    try:
        frames = poison_frames(channel.channel_id, kind, exchange, routing_key, body, connection.frame_max,
                               persistent=persistent)
        confirmed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # test-only plumbing: register the hand-written publish with the channel's confirm tracker
        channel._tracker.add_mandatory(confirmed)
        connection._write(frames)
        await asyncio.wait_for(confirmed, timeout)
    finally:
        if channel.is_open:
            await channel.close(timeout=timeout)


__all__ = ["POISON_KINDS", "poison_frames", "poison_properties", "poison_routing_key", "publish_poison"]
