"""The AMQP 0-9-1 connection: an asyncio Protocol (uvloop or the default loop).

It does the handshake (PLAIN or EXTERNAL), tune/frame_max negotiation, heartbeats both ways,
connection.blocked/unblocked, and clean close. Incoming bytes go through the compiled FrameReader
and are dispatched to channels in bulk; outgoing frames of every channel are appended to one
buffer that is written once per loop turn (``_flush`` scheduled with ``call_soon``).

Input is bounded: the reader enforces a frame_max from the first byte (ours until tune, then the
negotiated one) and ``max_message_size``; a delivery over the latter arrives marked ``oversized``
(body dropped as it came), is counted in ``oversized_messages`` and logged once.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from pamqp import commands as spec

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast._version import __version__ as CLIENT_VERSION
from mmate_fast.amqp.url import Addresses, ConnectionParameters, connect_order, parse_urls, safe_urls

_frames = load("frames")
_pool = load("pool")

log = logging.getLogger("mmate_fast.amqp")

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
_Delivery = _frames.Delivery
_Confirm = _frames.Confirm
_MethodFrame = _frames.MethodFrame
_Heartbeat = _frames.Heartbeat

CLIENT_PRODUCT = "mmate_fast"
#: connect() overrides that change the TLS context built from the URL
_TLS_OPTIONS = frozenset({"cacertfile", "certfile", "keyfile", "verify"})

BlockedCallback = Callable[["Connection", str | None], None]


def _client_properties(params: ConnectionParameters) -> dict[str, Any]:
    props: dict[str, Any] = {
        "product": CLIENT_PRODUCT,
        "version": CLIENT_VERSION,
        "platform": "Python",
        "capabilities": {
            "publisher_confirms": True,
            "basic.nack": True,
            "consumer_cancel_notify": True,
            "connection.blocked": True,
            "authentication_failure_close": True,
            "exchange_exchange_bindings": True,
            "per_consumer_qos": True,
        },
    }
    if params.connection_name:
        props["connection_name"] = params.connection_name
    return props


class Connection(asyncio.Protocol):
    """One AMQP connection. Create it with ``await mmate_fast.amqp.connect(url)``."""

    def __init__(self, params: ConnectionParameters, loop: asyncio.AbstractEventLoop) -> None:
        self.params = params
        self.loop = loop
        self._transport: asyncio.Transport | None = None
        # until tune: our own frame_max (for 0, "the broker's value", not known yet: the default)
        self.frame_max = params.frame_max or 131072
        self._reader = _frames.FrameReader(self.frame_max, params.max_message_size)
        self._oversized_seen = 0
        self._wbuf = bytearray()
        self._flush_pending = False
        self._ack_dirty: list[Any] = []
        self._channels: dict[int, Any] = {}
        self._channel_ids = _pool.ChannelIds(params.channel_max or 2047)
        self._handshake: asyncio.Future[None] = loop.create_future()
        self._closing: asyncio.Future[None] | None = None
        self._closed_exc: BaseException | None = None
        self._close_waiter: asyncio.Future[None] = loop.create_future()
        self.server_properties: dict[str, Any] = {}
        self.channel_max = params.channel_max or 2047
        self.heartbeat = 0
        # flow control: the socket's buffer (pause/resume_writing) and the broker (blocked)
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False
        self.blocked = False
        self.blocked_reason: str | None = None
        self._blocked_at = 0.0
        self.on_blocked: list[BlockedCallback] = []
        self.on_unblocked: list[BlockedCallback] = []
        self.on_close: list[Callable[[Connection, BaseException | None], None]] = []
        # heartbeat bookkeeping
        self._hb_handle: asyncio.TimerHandle | None = None
        self._rx_count = 0
        self._tx_count = 0
        self._rx_seen = 0
        self._tx_seen = 0
        self._rx_idle_ticks = 0

    # ------------------------------------------------------------------ public API
    @property
    def is_closed(self) -> bool:
        return self._closed_exc is not None

    @property
    def oversized_messages(self) -> int:
        """Deliveries received over ``max_message_size`` (handed on marked ``oversized``)."""
        return int(self._reader.oversized_count)

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolves when the connection is closed (for any reason)."""
        return self._close_waiter

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        return f"<Connection {self.params.safe_url()} {state} channels={len(self._channels)}>"

    async def channel(self, *, publisher_confirms: bool = False, timeout: float | None = None) -> Any:
        """Open a new channel (optionally in publisher-confirm mode)."""
        from mmate_fast.amqp.channel import Channel

        self._check_open()
        channel_id = self._channel_ids.allocate()
        ch = Channel(self, channel_id)
        self._channels[channel_id] = ch
        try:
            await ch._open_channel(timeout)
            if publisher_confirms:
                await ch.confirm_select(timeout=timeout)
        except BaseException:
            if self._channels.get(channel_id) is ch and not ch.is_open:
                self._forget_channel(channel_id)
            raise
        return ch

    async def close(self, timeout: float | None = None, reply_code: int = 200,
                    reply_text: str = "Normal shutdown") -> None:
        """Close cleanly: connection.close, wait for close-ok (bounded), then drop the socket."""
        if self._closed_exc is not None:
            return
        if self._closing is None:
            self._closing = self.loop.create_future()
            self._emit_acks()  # acks of this loop turn go before the close (the broker drops later frames)
            self._send_method(0, spec.Connection.Close(reply_code, reply_text, 0, 0))
        try:
            async with asyncio.timeout(timeout if timeout is not None else self.params.timeout):
                await asyncio.shield(self._closing)
        except TimeoutError:
            log.warning("connection.close-ok not received in time; dropping the socket")
        finally:
            self._finish(errors.ConnectionClosedError("connection closed by client", reply_code,
                                                      reply_text))

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until the socket buffer is below its high-water mark and the broker is not blocking.

        Writes what is queued first: back-pressure is only known once the transport has the bytes.
        """
        if self._wbuf and self._transport is not None and self._closed_exc is None:
            self._flush()
        if self._writable.is_set():
            self._check_open()
            return
        wait = timeout if timeout is not None else self.params.timeout
        try:
            async with asyncio.timeout(wait):
                await self._writable.wait()
        except TimeoutError:
            raise self._drain_timeout(wait) from None
        self._check_open()

    def _drain_timeout(self, waited: float) -> errors.OperationTimeout:
        """Why nothing could be written for ``waited`` seconds: the broker blocked us, or the socket."""
        if self.blocked:
            reason = self.blocked_reason or ""
            since = self.loop.time() - self._blocked_at
            return errors.ConnectionBlockedError(
                f"the broker blocked publishing on this connection ({reason or 'no reason given'}; "
                f"blocked for {since:.1f} s) and it was still blocked after waiting {waited} s; the "
                "call that waited sent nothing. The broker blocks publishers while a resource alarm is "
                "on (memory or disk): free that resource on the broker (consume or purge backlogs, add "
                "disk), then retry; or give publish() a longer timeout", reason=reason)
        return errors.OperationTimeout(
            f"the socket's write buffer stayed full for {waited} s (the broker or the network does not "
            "keep up); nothing more was queued: retry, or give publish()/drain() a longer timeout")

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ writing
    def _write(self, data: bytes) -> None:
        self._wbuf += data
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self._flush)

    def _schedule_flush(self) -> None:
        self._flush_pending = True
        self.loop.call_soon(self._flush)

    def _emit_acks(self) -> None:
        """Append the coalesced ack runs of this loop turn to the write buffer."""
        if self._ack_dirty:
            dirty, self._ack_dirty = self._ack_dirty, []
            for ch in dirty:
                ch._emit_ack_run()

    def _flush(self) -> None:
        """Write everything queued this loop turn in one transport.write."""
        self._flush_pending = False
        if self._ack_dirty:
            self._emit_acks()
        buf = self._wbuf
        if buf and self._transport is not None and self._closed_exc is None:
            self._wbuf = bytearray()
            self._tx_count += 1
            self._transport.write(buf)
        elif buf:
            buf.clear()

    def _send_method(self, channel: int, method: Any) -> None:
        self._write(_frames.marshal_method(method, channel))

    # ------------------------------------------------------------------ protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check here
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._transport.set_write_buffer_limits(high=4 << 20, low=1 << 20)  # type: ignore[union-attr]
        self._transport.write(PROTOCOL_HEADER)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self._rx_count += 1
        try:
            items = self._reader.feed(data)
        except errors.FrameError as exc:
            self._protocol_error(exc)
            return
        if self._reader.oversized_count != self._oversized_seen:
            self._log_oversized(items)
        if self._reader.hook_errors:
            self._log_hook_errors()
        channels = self._channels
        for item in items:
            cid = item.channel
            if cid == 0:
                self._on_connection_frame(item)
                continue
            ch = channels.get(cid)
            if ch is None:
                # frames for a channel we already forgot (e.g. in-flight deliveries after close)
                continue
            ch._on_frame(item)

    def _log_hook_errors(self) -> None:
        """Log what consumer hooks raised in the last feed (as a failed consumer callback is)."""
        failed, self._reader.hook_errors = self._reader.hook_errors, []
        for delivery, exc in failed:
            log.error("consumer callback on channel %d failed (delivery tag %d left unacked)",
                      delivery.channel, delivery.delivery_tag, exc_info=exc)

    def _log_oversized(self, items: list[Any]) -> None:
        """Log each delivery of ``items`` the reader marked oversized (once per message)."""
        self._oversized_seen = self._reader.oversized_count
        for item in items:
            if type(item) is _Delivery and item.oversized:
                log.warning(
                    "delivery tag %d on channel %d (exchange %r, routing key %r) declared a body of %d "
                    "bytes, over max_message_size %d: its body was dropped as it arrived; it is handed "
                    "on marked oversized (raise max_message_size to accept such messages)",
                    item.delivery_tag, item.channel, item.exchange, item.routing_key, item.oversized,
                    self._reader.max_message_size)

    def pause_writing(self) -> None:
        self._paused = True
        self._writable.clear()

    def resume_writing(self) -> None:
        self._paused = False
        if not self.blocked:
            self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._closed_exc is None:
            if self._closing is not None:
                err: BaseException = errors.ConnectionClosedError("connection closed by client", 200,
                                                                  "Normal shutdown")
            elif not self._handshake.done() and self.params.tls and not self.server_properties:
                # TLS up, but closed before connection.start: the broker's TLS layer refused us
                # (a TLS 1.3 "certificate required" alert arrives here as a plain EOF)
                err = errors.TLSError(
                    f"broker {self.params.host}:{self.params.port} closed the TLS connection before the "
                    f"AMQP handshake began{': ' + str(exc) if exc else ''}; it may require a client "
                    "certificate (certfile=/keyfile=) or refuse the one sent")
            elif not self._handshake.done():
                err = errors.AMQPConnectionError(
                    f"broker {self.params.host}:{self.params.port} closed the socket during the handshake"
                    f"{': ' + str(exc) if exc else ''} (bad credentials, vhost or TLS settings?)")
            else:
                err = errors.ConnectionClosedError(
                    f"connection to {self.params.host}:{self.params.port} lost"
                    f"{': ' + str(exc) if exc else ''}")
            self._finish(err)

    # ------------------------------------------------------------------ connection-level frames
    def _on_connection_frame(self, item: Any) -> None:
        if type(item) is _Heartbeat:
            return
        if type(item) is not _MethodFrame:
            self._protocol_error(errors.FrameError("content frame on channel 0", 504, "CHANNEL_ERROR"))
            return
        m = item.method
        if isinstance(m, spec.Connection.Start):
            self._on_start(m)
        elif isinstance(m, spec.Connection.Tune):
            self._on_tune(m)
        elif isinstance(m, spec.Connection.OpenOk):
            if not self._handshake.done():
                self._handshake.set_result(None)
        elif isinstance(m, spec.Connection.Close):
            self._on_remote_close(m)
        elif isinstance(m, spec.Connection.CloseOk):
            if self._closing is not None and not self._closing.done():
                self._closing.set_result(None)
            if self._transport is not None:
                self._transport.close()
        elif isinstance(m, spec.Connection.Blocked):
            self._set_blocked(True, m.reason)
        elif isinstance(m, spec.Connection.Unblocked):
            self._set_blocked(False, None)
        elif isinstance(m, spec.Connection.Secure):
            self._protocol_error(errors.AuthenticationError(
                "broker asked for a SASL challenge (connection.secure); only PLAIN and EXTERNAL are "
                "supported",
                403, "ACCESS_REFUSED"))
        else:
            log.debug("ignoring unexpected connection frame %r", m)

    def _on_start(self, m: Any) -> None:
        self.server_properties = dict(m.server_properties or {})
        mechanisms = (m.mechanisms or "").split()
        mech = self.params.auth_mechanism
        if mech not in mechanisms:
            self._fail_handshake(errors.AuthenticationError(
                f"broker does not offer SASL {mech} (it offers {', '.join(mechanisms) or 'nothing'})",
                403, "ACCESS_REFUSED"))
            return
        response = "" if mech == "EXTERNAL" else f"\0{self.params.username}\0{self.params.password}"
        self._send_method(0, spec.Connection.StartOk(
            client_properties=_client_properties(self.params), mechanism=mech, response=response,
            locale="en_US"))

    def _on_tune(self, m: Any) -> None:
        def negotiate(ours: int, theirs: int) -> int:
            if not ours:
                return theirs
            if not theirs:
                return ours
            return min(ours, theirs)

        self.channel_max = negotiate(self.params.channel_max, m.channel_max) or 65535
        frame_max = negotiate(self.params.frame_max, m.frame_max) or 131072
        if frame_max < _frames.FRAME_MIN_SIZE:
            self._protocol_error(errors.AMQPConnectionError(
                f"broker {self.params.host}:{self.params.port} proposed frame_max {frame_max}, below the "
                f"AMQP minimum {_frames.FRAME_MIN_SIZE}; fix the broker's frame_max setting",
                530, "NOT_ALLOWED"))
            return
        self.frame_max = frame_max
        self.heartbeat = m.heartbeat if self.params.heartbeat is None else self.params.heartbeat
        self._channel_ids = _pool.ChannelIds(min(self.channel_max, 65535))
        self._reader.frame_max = self.frame_max
        self._send_method(0, spec.Connection.TuneOk(channel_max=self.channel_max,
                                                    frame_max=self.frame_max, heartbeat=self.heartbeat))
        self._send_method(0, spec.Connection.Open(virtual_host=self.params.virtual_host))
        if self.heartbeat > 0:
            self._hb_handle = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    def _on_remote_close(self, m: Any) -> None:
        code, text = m.reply_code, m.reply_text
        if not self._handshake.done():
            cls: type[errors.AMQPConnectionError] = (
                errors.AuthenticationError if code == 403 else errors.AMQPConnectionError)
            err: errors.AMQPConnectionError = cls(
                f"broker refused the connection to {self.params.safe_url()}: {code} {text}", code, text)
        else:
            err = errors.ConnectionClosedError(f"connection closed by broker: {code} {text}", code, text)
        # answer close-ok, flush it, then drop
        self._write(_frames.marshal_method(spec.Connection.CloseOk(), 0))
        self._flush()
        self._finish(err)

    def _set_blocked(self, blocked: bool, reason: str | None) -> None:
        self.blocked = blocked
        self.blocked_reason = reason
        if blocked:
            self._blocked_at = self.loop.time()
            log.warning("broker blocked publishing on this connection: %s", reason)
            self._writable.clear()
        else:
            log.info("broker unblocked publishing on this connection")
            if not self._paused:
                self._writable.set()
        for cb in list(self.on_blocked if blocked else self.on_unblocked):
            try:
                cb(self, reason)
            except Exception:
                log.exception("blocked/unblocked callback failed")

    # ------------------------------------------------------------------ heartbeats
    def _heartbeat_tick(self) -> None:
        if self._closed_exc is not None or self._transport is None:
            return
        if self._rx_count == self._rx_seen:
            self._rx_idle_ticks += 1
            # ticks are heartbeat/2 apart: 4 silent ticks = 2 heartbeat intervals
            if self._rx_idle_ticks >= 4:
                self._transport.abort()
                self._finish(errors.HeartbeatTimeout(
                    f"no data from the broker for {2 * self.heartbeat} s (2 heartbeat intervals); "
                    "connection dropped"))
                return
        else:
            self._rx_idle_ticks = 0
        self._rx_seen = self._rx_count
        if self._tx_count == self._tx_seen and not self._flush_pending:
            self._transport.write(_frames.HEARTBEAT_FRAME)
        self._tx_seen = self._tx_count
        self._hb_handle = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    # ------------------------------------------------------------------ failure and teardown
    def _protocol_error(self, exc: errors.AMQPConnectionError) -> None:
        """The peer broke the protocol: send connection.close with the code, then drop the socket."""
        log.error("AMQP protocol error from broker, closing connection: %s", exc)
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.write(_frames.marshal_method(
                    spec.Connection.Close(exc.reply_code or 501, str(exc)[:255], 0, 0), 0))
            self._transport.close()
        self._finish(exc)

    def _fail_handshake(self, exc: BaseException) -> None:
        if self._transport is not None:
            self._transport.close()
        self._finish(exc)

    def _finish(self, exc: BaseException) -> None:
        """Mark the connection closed with ``exc`` and fail everything that waits on it."""
        if self._closed_exc is not None:
            return
        self._closed_exc = exc
        if self._hb_handle is not None:
            self._hb_handle.cancel()
        if not self._handshake.done():
            self._handshake.set_exception(exc)
            self._handshake.exception()  # mark retrieved; connect() re-raises it
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)
        for ch in list(self._channels.values()):
            ch._on_connection_closed(exc)
        self._channels.clear()
        self._writable.set()  # wake drainers; they re-check and raise
        if self._transport is not None:
            self._transport.close()
        if not self._close_waiter.done():
            self._close_waiter.set_result(None)
        for cb in list(self.on_close):
            try:
                cb(self, exc)
            except Exception:
                log.exception("on_close callback failed")

    def _check_open(self) -> None:
        if self._closed_exc is not None:
            if isinstance(self._closed_exc, errors.AMQPConnectionError):
                raise self._closed_exc
            raise errors.ConnectionClosedError(str(self._closed_exc))

    def _forget_channel(self, channel_id: int) -> None:
        if self._channels.pop(channel_id, None) is not None:
            self._channel_ids.release(channel_id)


def apply_overrides(params: ConnectionParameters, overrides: dict[str, Any], caller: str = "connect") -> None:
    """Set ``overrides`` (ConnectionParameters fields) on ``params``: InvalidArgumentError for an
    unknown option or a limit out of range; a ready ``ssl_context`` means TLS, overridden TLS file
    options rebuild the context."""
    for key, value in overrides.items():
        if not hasattr(params, key):
            raise errors.InvalidArgumentError(
                f"{caller}() got an unknown option {key!r}: use a ConnectionParameters field", key)
        setattr(params, key, value)
    if (bad := params.limits_problem()) is not None:
        raise errors.InvalidArgumentError(f"connection option {bad[1]}", bad[0])
    if overrides.get("ssl_context") is not None:
        params.tls = True  # a ready context means TLS, even with an amqp:// URL
    elif _TLS_OPTIONS & overrides.keys():
        params.ssl_context = None  # rebuilt by connect from the overridden cacertfile/certfile/...


async def connect(url: Addresses, *, timeout: float | None = None,
                  loop: asyncio.AbstractEventLoop | None = None, shuffle: bool | None = None,
                  **overrides: Any) -> Connection:
    """Connect and complete the AMQP handshake, or raise a named error within ``timeout`` seconds
    (per node).

    ``url``: ``amqp://user:pass@host:port/vhost?heartbeat=30&frame_max=131072`` or parameters; a
    cluster: ``amqp://u:p@h1:5672,h2:5673/`` or a list of URLs, tried in order (``shuffle=True`` or
    the URL's ``shuffle=true``: in a random order) until one answers.
    ``overrides``: any ConnectionParameters field (e.g. ``ssl_context=...``, ``heartbeat=0``,
    ``max_message_size=1 << 20``); the limits are checked as in the URL (InvalidArgumentError).
    """
    nodes = parse_urls(url)
    for params in nodes:
        apply_overrides(params, overrides)
    loop = loop or asyncio.get_running_loop()
    if len(nodes) == 1:
        return await _connect_node(nodes[0], timeout, loop)
    conn, _ = await connect_any(nodes, connect_order(nodes, 0, shuffle), timeout, loop)
    return conn


async def connect_any(nodes: list[ConnectionParameters], order: list[int], timeout: float | None,
                      loop: asyncio.AbstractEventLoop) -> tuple[Connection, int]:
    """Connect to the first of ``nodes`` (tried in ``order``) that answers; (connection, its index).
    When none does: the named error of the failures (BrokerUnreachableError when they differ),
    naming every node and why it failed."""
    failures: list[tuple[int, errors.AMQPConnectionError]] = []
    for index in order:
        try:
            return await _connect_node(nodes[index], timeout, loop), index
        except errors.AMQPConnectionError as exc:
            log.info("node %s refused or did not answer (%s); trying the next", nodes[index].safe_url(), exc)
            failures.append((index, exc))
    if len(nodes) == 1:
        raise failures[0][1]  # one node: its own error says it all
    kinds = {type(exc) for _, exc in failures}
    cls = kinds.pop() if len(kinds) == 1 else errors.BrokerUnreachableError
    why = "; ".join(f"{nodes[i].host}:{nodes[i].port}: {exc}" for i, exc in failures)
    last = failures[-1][1]
    raise cls(f"cannot connect to any of the {len(nodes)} nodes of {safe_urls(nodes)}: {why}",
              last.reply_code, last.reply_text) from None


async def _connect_node(params: ConnectionParameters, timeout: float | None,
                        loop: asyncio.AbstractEventLoop) -> Connection:
    """Connect to one node (see :func:`connect`)."""
    if timeout is None:
        timeout = params.connection_timeout
    conn = Connection(params, loop)
    ssl_ctx = params.build_ssl_context() if params.tls else None
    try:
        async with asyncio.timeout(timeout):
            try:
                await loop.create_connection(
                    lambda: conn, params.host, params.port, ssl=ssl_ctx,
                    server_hostname=(params.server_hostname or params.host) if ssl_ctx else None)
            except ssl.SSLError as exc:  # before OSError, which it subclasses
                detail = getattr(exc, "verify_message", None) or exc.reason or exc.strerror or str(exc)
                raise errors.TLSError(
                    f"TLS handshake with {params.safe_url()} failed: {detail} ({exc.reason}); check "
                    "cacertfile, the host name / server_name_indication, and the client certificate"
                ) from None
            except OSError as exc:
                raise errors.BrokerUnreachableError(
                    f"cannot connect to {params.safe_url()}: {exc.strerror or exc}; is the broker "
                    "running and the host/port right?") from None
            await conn._handshake
    except TimeoutError:
        conn._fail_handshake(errors.HandshakeTimeout(
            f"connecting to {params.safe_url()} took more than {timeout} s"))
        raise errors.HandshakeTimeout(
            f"connecting to {params.safe_url()} took more than {timeout} s (TCP connect + AMQP "
            "handshake); check host, port, TLS and that the broker is healthy") from None
    except BaseException:
        if conn._transport is not None:
            conn._transport.close()
        raise
    return conn
