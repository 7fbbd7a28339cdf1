"""One connection to RabbitMQ's stream port (5552): an asyncio BufferedProtocol speaking the stream protocol
(the socket read straight into one buffer, frames parsed in place).

Handshake (peer properties, SASL PLAIN, tune, open), request/response by correlation id with a
timeout, heartbeats both ways, and the routing of the one-way frames: publish confirms/errors to
their :class:`~mmate_fast.transports.streams.producer.StreamProducer`, delivered chunks to their
:class:`~mmate_fast.transports.streams.subscription.StreamSubscription`. Outgoing frames are written
at once (a Publish frame already carries a whole batch).

Open one with ``await connect_stream("rabbitmq-stream://guest:guest@127.0.0.1:5552/")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from mmate_fast import errors
from mmate_fast._transport.streams import OffsetSpec
from mmate_fast._version import __version__
from mmate_fast.transports.streams import _codec as c

log = logging.getLogger("mmate_fast.streams")

DEFAULT_PORT = 5552
#: the URL schemes this module opens (``amqp://`` URLs are mapped by :func:`stream_url`)
SCHEMES = ("rabbitmq-stream",)



def stream_url(url: str, port: int = DEFAULT_PORT) -> str:
    """The stream URL of the broker an ``amqp://`` URL names: same host, credentials and vhost,
    the stream port. A ``rabbitmq-stream://`` URL is returned as it is."""
    parts = urlsplit(url)
    if parts.scheme in SCHEMES:
        return url
    if parts.scheme != "amqp":
        raise errors.InvalidURLError(
            f"no stream URL for a {parts.scheme or 'schemeless'} URL (amqp:// or rabbitmq-stream:// only)"
        )
    auth = ""
    if parts.username is not None:
        auth = parts.username + (f":{parts.password}" if parts.password is not None else "") + "@"
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"rabbitmq-stream://{auth}{host}:{port}{parts.path or '/'}"


def offset_spec(offset: OffsetSpec) -> tuple[int, int]:
    """(Subscribe's offset type, value) of ``"first"``, ``"last"``, ``"next"``, an absolute offset
    (int >= 0) or a datetime (the first chunk written at or after it)."""
    if isinstance(offset, str):
        kind = {"first": c.OFFSET_FIRST, "last": c.OFFSET_LAST, "next": c.OFFSET_NEXT}.get(offset)
        if kind is None:
            raise errors.InvalidArgumentError(
                f"offset must be 'first', 'last', 'next', an offset (int) or a datetime, not {offset!r}",
                "offset",
            )
        return kind, 0
    if isinstance(offset, datetime):
        if offset.tzinfo is None:
            raise errors.InvalidArgumentError("offset datetime must be timezone-aware (e.g. UTC)", "offset")
        return c.OFFSET_TIMESTAMP, int(offset.timestamp() * 1000)
    if type(offset) is int and 0 <= offset < 1 << 64:
        return c.OFFSET_ABSOLUTE, offset
    raise errors.InvalidArgumentError(
        f"offset must be 'first', 'last', 'next', an offset (int >= 0) or a datetime, not {offset!r}",
        "offset",
    )


def _response_error(code: int, what: str) -> errors.StreamError:
    text = c.RESPONSE_TEXT.get(code, f"code 0x{code:02x}")
    msg = f"{what}: {text} (stream response 0x{code:02x})"
    if code in (c.STREAM_DOES_NOT_EXIST, c.STREAM_NOT_AVAILABLE):
        return errors.StreamNotFoundError(msg, code)
    if code == c.AUTHENTICATION_FAILURE:
        return errors.StreamConnectionError(msg + "; check the user name and password", code)
    return errors.StreamError(msg, code)


#: the read buffer's first size (a chunk of a few hundred Mmate messages fits) and the least room a
#: read gets
_READ_BUFFER = 2 << 20
_MIN_READ = 256 << 10


class StreamConnection(asyncio.BufferedProtocol):
    """A stream-protocol connection. Create it with :func:`connect_stream`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.frame_max = 1 << 20
        self.heartbeat = 60
        self.server_properties: dict[str, str] = {}
        self._transport: Any = None
        #: the read buffer: frames parsed in place from ``_start`` to ``_end``
        self._rbuf = bytearray(_READ_BUFFER)
        self._rview = memoryview(self._rbuf)
        self._start = 0
        self._end = 0
        self._need = 0
        self._corr = 0
        self._pending: dict[int, tuple[asyncio.Future[tuple[int, bytes, int]], int]] = {}
        self._tune: asyncio.Future[None] = loop.create_future()
        self._closed: asyncio.Future[BaseException] = loop.create_future()
        self._producers: dict[int, Any] = {}
        self._subscriptions: dict[int, Any] = {}
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self._last_rx = loop.time()
        self.host = ""
        self.port = 0

    # ------------------------------------------------------------------ asyncio Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the next read goes: the free end of the read buffer (asyncio.BufferedProtocol: the
        socket is read straight into it, no bytes object per read, no copy of a chunk before it is
        split). Made room in by moving the unparsed tail to the front, or by a larger buffer when a
        frame does not fit."""
        size = len(self._rbuf)
        if size - self._end >= _MIN_READ:
            return self._rview[self._end:]
        pending = self._end - self._start
        need = max(self._need, pending) + _MIN_READ
        if need > size:  # a frame larger than the buffer: a new one (the old may still be exported)
            rbuf = bytearray(max(need, 2 * size))
            rbuf[:pending] = self._rview[self._start:self._end]
            self._rbuf, self._rview = rbuf, memoryview(rbuf)
        elif pending:
            self._rview[:pending] = self._rview[self._start:self._end]  # memmove
        self._start, self._end = 0, pending
        return self._rview[pending:]

    def buffer_updated(self, nbytes: int) -> None:
        self._last_rx = self.loop.time()
        end = self._end = self._end + nbytes
        pos = self._start
        if end - pos < self._need:  # a large frame (a chunk) still coming
            return
        data = self._rbuf
        try:
            while end - pos >= 4:
                size = c.U32.unpack_from(data, pos)[0]
                stop = pos + 4 + size
                if stop > end:
                    break
                if size < 4:
                    raise errors.StreamProtocolError(f"stream frame of {size} bytes has no key")
                self._on_frame(data, pos + 4, stop)
                pos = stop
        except errors.StreamProtocolError as exc:
            log.error("stream connection to %s:%d: %s; closing it", self.host, self.port, exc)
            self._fail(errors.StreamConnectionError(f"bad frame from the stream port: {exc}"))
            if self._transport is not None:
                self._transport.abort()
            return
        if pos == end:
            self._start = self._end = 0
            self._need = 0
        else:
            self._start = pos
            # bytes the frame that starts the buffer needs (its size once 4 bytes are in)
            self._need = 4 + c.U32.unpack_from(data, pos)[0] if end - pos >= 4 else 4

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(
            errors.StreamConnectionError(
                f"stream connection to {self.host}:{self.port} lost{': ' + str(exc) if exc else ''}"
            )
        )

    def _fail(self, exc: BaseException) -> None:
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
            self._heartbeat_timer = None
        if not self._closed.done():
            self._closed.set_result(exc)
        for fut, _key in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()
        if not self._tune.done():
            self._tune.set_exception(exc)
            self._tune.exception()
        for producer in list(self._producers.values()):
            producer._connection_lost(exc)
        for sub in list(self._subscriptions.values()):
            sub._connection_lost(exc)

    # ------------------------------------------------------------------ frames in
    def _on_frame(self, data: bytes | bytearray, pos: int, end: int) -> None:
        key = c.U16.unpack_from(data, pos)[0]
        body = pos + 4  # after key + version
        if key == c.DELIVER:
            sub = self._subscriptions.get(data[body])
            if sub is not None:
                sub._on_chunk(data, body + 1, end)
        elif key == c.PUBLISH_CONFIRM:
            producer = self._producers.get(data[body])
            if producer is not None:
                count = c.U32.unpack_from(data, body + 1)[0]
                producer._on_confirm(body + 5, count, data)
        elif key == c.PUBLISH_ERROR:
            producer = self._producers.get(data[body])
            count = c.U32.unpack_from(data, body + 1)[0]
            failed = [
                (
                    c.U64.unpack_from(data, body + 5 + 10 * i)[0],
                    c.U16.unpack_from(data, body + 13 + 10 * i)[0],
                )
                for i in range(count)
            ]
            if producer is not None:
                producer._on_error(failed)
        elif key == c.HEARTBEAT:
            pass
        elif key == c.TUNE:
            frame_max, heartbeat = c.U32.unpack_from(data, body)[0], c.U32.unpack_from(data, body + 4)[0]
            self.frame_max = frame_max or self.frame_max
            self.heartbeat = heartbeat
            self._write(c.command(c.TUNE, c.U32.pack(self.frame_max) + c.U32.pack(heartbeat)))
            if not self._tune.done():
                self._tune.set_result(None)
        elif key == c.CLOSE:
            corr, code = c.U32.unpack_from(data, body)[0], c.U16.unpack_from(data, body + 4)[0]
            reason, _ = c.read_string(data, body + 6)
            self._write(c.U32.pack(10) + c.RESPONSE_HEAD.pack(c.CLOSE | c.RESPONSE, c.VERSION, corr, c.OK))
            self._fail(
                errors.StreamConnectionError(f"broker closed the stream connection: {code} {reason}", code)
            )
            if self._transport is not None:
                self._transport.close()
        elif key == c.METADATA_UPDATE:
            code = c.U16.unpack_from(data, body)[0]
            stream, _ = c.read_string(data, body + 2)
            log.warning(
                "stream %r metadata update (code 0x%02x): its subscriptions and publishers are "
                "closed by the broker",
                stream,
                code,
            )
            for sub in list(self._subscriptions.values()):
                if sub.stream == stream:
                    sub._connection_lost(errors.StreamNotFoundError(f"stream {stream!r} is gone", code))
        elif key == c.CREDIT | c.RESPONSE:
            code = c.U16.unpack_from(data, body)[0]
            log.warning(
                "credit refused for subscription %d: %s", data[body + 2], c.RESPONSE_TEXT.get(code, hex(code))
            )
        elif key & c.RESPONSE:
            corr = c.U32.unpack_from(data, body)[0]
            entry = self._pending.pop(corr, None)
            if entry is not None and not entry[0].done():
                code = c.U16.unpack_from(data, body + 4)[0] if key != c.METADATA | c.RESPONSE else c.OK
                entry[0].set_result((code, bytes(data[:end]), body + 6))
        else:
            log.warning("unexpected stream frame key 0x%04x ignored", key)

    # ------------------------------------------------------------------ frames out
    def _write(self, frame: bytes | bytearray) -> None:
        transport = self._transport
        if transport is None:
            raise errors.StreamConnectionError(f"stream connection to {self.host}:{self.port} is closed")
        transport.write(frame)

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    async def request(
        self,
        key: int,
        content: bytes,
        what: str,
        *,
        ok: tuple[int, ...] = (c.OK,),
        timeout: float | None = None,
    ) -> tuple[int, bytes, int]:
        """Send a request, wait for its response: (code, frame bytes, position after the code).
        StreamError (a named subclass where one fits) for a code not in ``ok``."""
        if self._closed.done():
            raise errors.StreamConnectionError(f"{what}: the stream connection is closed")
        self._corr = corr = (self._corr + 1) & 0xFFFFFFFF
        fut: asyncio.Future[tuple[int, bytes, int]] = self.loop.create_future()
        self._pending[corr] = (fut, key)
        self._write(c.request(key, corr, content))
        try:
            async with asyncio.timeout(timeout or self.timeout):
                code, data, pos = await fut
        except TimeoutError:
            self._pending.pop(corr, None)
            raise errors.OperationTimeout(
                f"{what}: no answer from the stream port within {timeout or self.timeout}s"
            ) from None
        if code not in ok:
            raise _response_error(code, what)
        return code, data, pos

    async def _handshake(self, vhost: str, username: str, password: str) -> None:
        props = {
            "product": "mmate_fast",
            "version": __version__,
            "platform": "Python",
            "connection_name": f"mmate_fast/{platform.node()}/{os.getpid()}",
        }
        _, data, pos = await self.request(c.PEER_PROPERTIES, c.string_map(props), "peer properties")
        self.server_properties, _ = c.read_string_map(data, pos)
        await self.request(c.SASL_HANDSHAKE, b"", "SASL handshake")
        secret = f"\0{username}\0{password}".encode()
        await self.request(
            c.SASL_AUTHENTICATE, c.string("PLAIN") + c.U32.pack(len(secret)) + secret, "SASL authenticate"
        )
        async with asyncio.timeout(self.timeout):
            await self._tune
        await self.request(c.OPEN, c.string(vhost), f"open virtual host {vhost!r}")
        if self.heartbeat:
            self._heartbeat_timer = self.loop.call_later(self.heartbeat / 2, self._beat)

    def _beat(self) -> None:
        """Send a heartbeat every half interval; close when the broker said nothing for two."""
        if self._transport is None:
            return
        if self.loop.time() - self._last_rx > 2 * self.heartbeat:
            log.error(
                "stream connection to %s:%d: no frame for %ds, closing it",
                self.host,
                self.port,
                2 * self.heartbeat,
            )
            self._transport.abort()
            return
        self._write(c.HEARTBEAT_FRAME)
        self._heartbeat_timer = self.loop.call_later(self.heartbeat / 2, self._beat)

    # ------------------------------------------------------------------ streams
    async def create_stream(
        self, stream: str, arguments: Mapping[str, Any] | None = None, *, exist_ok: bool = True
    ) -> bool:
        """Create ``stream`` (``arguments``: ``max-length-bytes``, ``max-age`` e.g. ``"7D"``,
        ``stream-max-segment-size-bytes``, ...). True if created, False if it existed (StreamError
        then unless ``exist_ok``)."""
        args = {k: str(v) for k, v in (arguments or {}).items()}
        code, _, _ = await self.request(
            c.CREATE,
            c.string(stream) + c.string_map(args),
            f"create stream {stream!r}",
            ok=(c.OK, c.STREAM_ALREADY_EXISTS),
        )
        if code == c.STREAM_ALREADY_EXISTS and not exist_ok:
            raise _response_error(code, f"create stream {stream!r}")
        return code == c.OK

    async def delete_stream(self, stream: str, *, missing_ok: bool = True) -> bool:
        """Delete ``stream``; False when there was none (StreamNotFoundError unless ``missing_ok``)."""
        code, _, _ = await self.request(
            c.DELETE, c.string(stream), f"delete stream {stream!r}", ok=(c.OK, c.STREAM_DOES_NOT_EXIST)
        )
        if code != c.OK and not missing_ok:
            raise _response_error(code, f"delete stream {stream!r}")
        return code == c.OK

    async def stream_exists(self, stream: str) -> bool:
        """Whether ``stream`` exists (a metadata query)."""
        _, data, pos = await self.request(
            c.METADATA, c.U32.pack(1) + c.string(stream), f"metadata of {stream!r}"
        )
        pos -= 2  # metadata responses carry no code: brokers follow the correlation id
        (brokers,) = c.U32.unpack_from(data, pos)
        pos += 4
        for _ in range(brokers):
            pos += 2
            _, pos = c.read_string(data, pos)
            pos += 4
        (count,) = c.U32.unpack_from(data, pos)
        pos += 4
        for _ in range(count):
            name, pos = c.read_string(data, pos)
            code = c.U16.unpack_from(data, pos)[0]
            if name == stream:
                return code == c.OK
            pos += 4
            (replicas,) = c.U32.unpack_from(data, pos)
            pos += 4 + 2 * replicas
        return False

    async def query_offset(self, reference: str, stream: str) -> int | None:
        """The offset stored under ``reference`` for ``stream``, or None when none is stored."""
        code, data, pos = await self.request(
            c.QUERY_OFFSET,
            c.string(reference) + c.string(stream),
            f"query offset {reference!r} on {stream!r}",
            ok=(c.OK, c.NO_OFFSET),
        )
        if code == c.NO_OFFSET:
            return None
        return int(c.U64.unpack_from(data, pos)[0])

    def store_offset(self, reference: str, stream: str, offset: int) -> None:
        """Store ``offset`` under ``reference`` (no answer: the broker writes it into the stream)."""
        self._write(c.command(c.STORE_OFFSET, c.string(reference) + c.string(stream) + c.U64.pack(offset)))

    async def query_publisher_sequence(self, reference: str, stream: str) -> int:
        """The last publishing id the broker stored for publisher ``reference`` (0 if none)."""
        _, data, pos = await self.request(
            c.QUERY_PUBLISHER_SEQUENCE,
            c.string(reference) + c.string(stream),
            f"query publisher sequence {reference!r} on {stream!r}",
        )
        return int(c.U64.unpack_from(data, pos)[0])

    # ------------------------------------------------------------------ producers, subscriptions
    def _free_id(self, used: dict[int, Any], what: str) -> int:
        for i in range(256):
            if i not in used:
                return i
        raise errors.StreamError(f"a stream connection carries at most 256 {what}; open another connection")

    async def producer(self, stream: str, *, reference: str = "", max_in_flight: int = 20_000,
                       sub_entries: bool = False) -> Any:
        """A :class:`StreamProducer` on ``stream``. With a ``reference`` (at most 256 characters) the
        broker drops messages whose publishing id it stored before (deduplication), and the producer
        goes on after the last stored id. ``max_in_flight``: unconfirmed messages before
        ``wait_room`` waits (the pipelining window). ``sub_entries``: each Publish frame's messages
        as one sub-entry batch (one publishing id, confirm and deduplication unit for the batch)."""
        from mmate_fast.transports.streams.producer import StreamProducer

        pid = self._free_id(self._producers, "publishers")
        self._producers[pid] = None
        try:
            await self.request(
                c.DECLARE_PUBLISHER,
                c.U8.pack(pid) + c.string(reference) + c.string(stream),
                f"declare publisher on {stream!r}",
            )
            next_id = (await self.query_publisher_sequence(reference, stream) + 1) if reference else 1
        except BaseException:
            del self._producers[pid]
            raise
        producer = StreamProducer(self, pid, stream, reference, next_id, max_in_flight, sub_entries)
        self._producers[pid] = producer
        return producer

    async def _delete_producer(self, pid: int) -> None:
        try:
            if not self._closed.done():
                await self.request(c.DELETE_PUBLISHER, c.U8.pack(pid), "delete publisher")
        finally:
            self._producers.pop(pid, None)

    async def subscribe(
        self,
        stream: str,
        on_chunk: Any,
        *,
        offset: OffsetSpec = "next",
        credit: int = 8,
        properties: Mapping[str, str] | None = None,
    ) -> Any:
        """A :class:`StreamSubscription` delivering ``stream`` from ``offset`` to ``on_chunk(first
        offset, chunk timestamp ms, [record bytes])`` (records below the start offset left out); it
        holds ``credit`` chunks in flight and gives one back per chunk handed on (``release``)."""
        from mmate_fast.transports.streams.subscription import StreamSubscription

        kind, value = offset_spec(offset)
        sid = self._free_id(self._subscriptions, "subscriptions")
        sub = StreamSubscription(self, sid, stream, on_chunk, value if kind == c.OFFSET_ABSOLUTE else 0)
        self._subscriptions[sid] = sub
        spec = c.U16.pack(kind) + (
            c.U64.pack(value)
            if kind == c.OFFSET_ABSOLUTE
            else c.I64.pack(value)
            if kind == c.OFFSET_TIMESTAMP
            else b""
        )
        try:
            await self.request(
                c.SUBSCRIBE,
                c.U8.pack(sid)
                + c.string(stream)
                + spec
                + c.U16.pack(credit)
                + c.string_map(properties or {}),
                f"subscribe to {stream!r}",
            )
        except BaseException:
            self._subscriptions.pop(sid, None)
            raise
        return sub

    async def _unsubscribe(self, sid: int) -> None:
        try:
            if not self._closed.done():
                await self.request(c.UNSUBSCRIBE, c.U8.pack(sid), "unsubscribe")
        finally:
            self._subscriptions.pop(sid, None)

    def credit(self, sid: int, chunks: int) -> None:
        if self._transport is not None:
            self._transport.write(c.command(c.CREDIT, c.U8.pack(sid) + c.U16.pack(chunks)))

    # ------------------------------------------------------------------ close
    async def close(self, timeout: float = 5.0) -> None:
        """Close (politely: a Close request first, then the socket). Idempotent."""
        if self._closed.done() or self._transport is None:
            return
        with contextlib.suppress(errors.MmateError, OSError):
            await self.request(c.CLOSE, c.U16.pack(1) + c.string("OK"), "close", timeout=timeout)
        if self._transport is not None:
            self._transport.close()
        self._fail(errors.StreamConnectionError("stream connection closed by client"))

    async def __aenter__(self) -> StreamConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect_stream(
    url: str = "rabbitmq-stream://guest:guest@127.0.0.1:5552/", *, timeout: float = 10.0
) -> StreamConnection:
    """Open and authenticate a stream connection (``rabbitmq-stream://user:pass@host:port/vhost``; an
    ``amqp://`` URL means the same broker's stream port). StreamConnectionError when the port does
    not answer or refuses us, with what to check."""
    url = stream_url(url)
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or DEFAULT_PORT
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(lambda: StreamConnection(loop, timeout), host, port)
    except (OSError, TimeoutError) as exc:
        raise errors.StreamConnectionError(
            f"cannot reach the stream port {host}:{port} ({exc or type(exc).__name__}): is the "
            "rabbitmq_stream plugin enabled (rabbitmq-plugins enable rabbitmq_stream)?"
        ) from None
    conn.host, conn.port = host, port
    try:
        await conn._handshake(vhost, unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    except BaseException:
        if conn._transport is not None:
            conn._transport.abort()
        raise
    return conn
