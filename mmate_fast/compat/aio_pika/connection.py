"""``connect()`` and ``Connection``: aio-pika's connection API on :func:`mmate_fast.amqp.connect`.

URLs are aio-pika's: ``amqp[s]://login:password@host:port/vhost?heartbeat=..&name=..`` plus the
keywords of ``connect`` (``host``, ``port``, ``login``, ``password``, ``virtualhost``, ``ssl``,
``ssl_options``, ``ssl_context``, ``timeout``, ``client_properties``; other keywords become URL
options, as in aio-pika). URL options mmate_fast's client has no use for (``interleave``,
``happy_eyeballs_delay``, aiormq-specific ones) are accepted and ignored, as aiormq ignores unknown
ones.
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from ssl import SSLContext
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from mmate_fast import errors
from mmate_fast.amqp.url import DEFAULT_PORT, DEFAULT_TLS_PORT, ConnectionParameters
from mmate_fast.compat.aio_pika._errors import raise_translated, translate
from mmate_fast.compat.aio_pika.abc import AbstractConnection, SSLOptions, TimeoutType
from mmate_fast.compat.aio_pika.channel import Channel
from mmate_fast.compat.aio_pika.exceptions import ConnectionClosed
from mmate_fast.compat.aio_pika.tools import CallbackCollection

log = logging.getLogger("mmate_fast.compat.aio_pika")

_TRUE = ("1", "true", "yes", "y", "on", "enable", "enabled")


def make_url(url: Any = None, *, host: str = "localhost", port: int = 5672, login: str = "guest",
             password: str = "guest", virtualhost: str = "/", ssl: bool = False,
             ssl_options: SSLOptions | None = None, client_properties: dict[str, Any] | None = None,
             **kwargs: Any) -> str:
    """The connection URL: ``url`` with ``kwargs`` (and ``ssl_options``) added as options, or one built
    from the keywords."""
    kw: dict[str, Any] = dict(kwargs)
    kw.update(ssl_options or {})
    kw.update(client_properties or {})
    kw = {k: int(v) if isinstance(v, bool) else v for k, v in kw.items() if v is not None}
    if url is not None:
        text = str(url)
        if not kw:
            return text
        parts = urlsplit(text)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        options.update({k: str(v) for k, v in kw.items()})
        return parts._replace(query=urlencode(options)).geturl()
    scheme = "amqps" if ssl else "amqp"
    from urllib.parse import quote

    vhost = quote(virtualhost, safe="/")  # "/" + "/" as aio-pika builds it
    query = f"?{urlencode({k: str(v) for k, v in kw.items()})}" if kw else ""
    return f"{scheme}://{quote(login, safe='')}:{quote(password, safe='')}@{host}:{port}/{vhost}{query}"


def parameters(url: str, ssl_context: SSLContext | None = None,
               client_properties: dict[str, Any] | None = None,
               ) -> tuple[ConnectionParameters, dict[str, str]]:
    """mmate_fast connection parameters for an aio-pika URL, and its query options."""
    parts = urlsplit(url)
    tls = parts.scheme.lower() == "amqps"
    if parts.scheme.lower() not in ("amqp", "amqps"):
        raise ValueError(f"AMQP URL must start with amqp:// or amqps://, got {parts.scheme!r}")
    path = parts.path
    vhost = "/" if path in ("", "/") else unquote(path[1:])
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    params = ConnectionParameters(
        host=parts.hostname or "localhost", port=parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
        virtual_host=vhost, username=unquote(parts.username) if parts.username else "guest",
        password=unquote(parts.password) if parts.password else "guest")
    for key in ("heartbeat", "frame_max", "channel_max"):
        if key in query:
            setattr(params, key, int(query[key]))
    if "name" in query:
        params.connection_name = query["name"]
    if client_properties and client_properties.get("connection_name"):
        params.connection_name = str(client_properties["connection_name"])
    if tls:
        params.cacertfile = query.get("cafile") or query.get("ca_certs") or None
        params.certfile = query.get("certfile") or None
        params.keyfile = query.get("keyfile") or None
        if query.get("no_verify_ssl", "0").lower() in _TRUE or query.get("cert_reqs") == "0":
            params.verify = False  # no_verify_ssl=1, or ssl_options={"cert_reqs": ssl.CERT_NONE}
        params.ssl_context = ssl_context
        params.tls = True
        if params.ssl_context is None:
            params.ssl_context = params.build_ssl_context()
    return params, query


class Connection(AbstractConnection):
    """An AMQP connection (aio-pika's ``Connection``); create it with :func:`connect`."""

    CHANNEL_CLASS: type[Channel] = Channel

    def __init__(self, url: Any, loop: asyncio.AbstractEventLoop | None = None,
                 ssl_context: SSLContext | None = None, client_properties: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self.loop = loop or asyncio.get_event_loop()
        self.transport: Any = None
        self._closed: asyncio.Future[bool] = self.loop.create_future()
        self._close_called = False
        self.url = str(url)
        self._params, self._query = parameters(self.url, ssl_context, client_properties)
        self.kwargs: dict[str, Any] = kwargs
        self.close_callbacks = CallbackCollection(self)
        self.connected = asyncio.Event()
        self._channels: weakref.WeakSet[Channel] = weakref.WeakSet()

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    @property
    def close_called(self) -> bool:
        return self._close_called

    def closed(self) -> Any:
        """Resolves (True) when the connection is closed; cancelling the waiter does not affect it."""
        return asyncio.shield(self._closed)

    def __str__(self) -> str:
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":******@", 1)
            return parts._replace(netloc=netloc).geturl()
        return self.url

    def __repr__(self) -> str:
        return f'<{type(self).__name__}: "{self}">'

    async def connect(self, timeout: TimeoutType = None) -> None:
        """Open the connection (called by :func:`connect`)."""
        from mmate_fast.amqp.connection import connect as amqp_connect

        try:
            self.transport = await amqp_connect(self._params, timeout=timeout, loop=self.loop)
        except errors.MmateError as error:
            raise_translated(error)
        self.transport.on_close.append(self._on_transport_closed)
        self.connected.set()

    def _on_transport_closed(self, conn: Any, exc: BaseException | None) -> None:
        self.connected.clear()
        if self._close_called:
            return
        self.close_callbacks(translate(exc) if exc is not None else None)
        if not self._closed.done():
            self._closed.set_result(True)

    def _channel_opened(self, channel: Channel) -> None:
        self._channels.add(channel)

    def channel(self, channel_number: int | None = None, publisher_confirms: bool = True,
                on_return_raises: bool = False) -> Any:
        """A new channel, opened by ``await`` or ``async with`` (publisher confirms on by default).
        ``channel_number`` is accepted; the number is allocated by the client."""
        if not self.transport:
            raise RuntimeError("Connection was not opened")
        if self.transport.is_closed:  # closed by the broker or the network (not by close())
            raise RuntimeError(f'<Connection: "{self}"> closed')
        return self.CHANNEL_CLASS(connection=self, channel_number=channel_number,
                                  publisher_confirms=publisher_confirms, on_return_raises=on_return_raises)

    async def ready(self) -> None:
        await self.connected.wait()

    async def close(self, exc: Any = ConnectionClosed) -> None:
        if self._close_called and self._closed.done():
            return
        self._close_called = True
        transport, self.transport = self.transport, None
        if transport is not None:
            await transport.close()
        for channel in list(self._channels):
            channel._mark_closed(None)
        if not self._closed.done():
            self.close_callbacks(None)
            self._closed.set_result(True)

    async def update_secret(self, new_secret: str, *, reason: str = "", timeout: TimeoutType = None) -> Any:
        raise NotImplementedError("connection.update_secret is not supported by mmate_fast")

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        await self.close()


async def connect(url: Any = None, *, host: str = "localhost", port: int = 5672, login: str = "guest",
                  password: str = "guest", virtualhost: str = "/", ssl: bool = False,
                  loop: asyncio.AbstractEventLoop | None = None, ssl_options: SSLOptions | None = None,
                  ssl_context: SSLContext | None = None, timeout: TimeoutType = None,
                  client_properties: dict[str, Any] | None = None,
                  connection_class: type[Connection] = Connection, **kwargs: Any) -> Any:
    """Connect to the broker (aio-pika's ``connect``): ``await connect("amqp://guest:guest@host/")``."""
    connection = connection_class(
        make_url(url, host=host, port=port, login=login, password=password, virtualhost=virtualhost,
                 ssl=ssl, ssl_options=ssl_options, **kwargs),
        loop=loop, ssl_context=ssl_context, client_properties=client_properties, **kwargs)
    await connection.connect(timeout=timeout)
    return connection


__all__ = ("Connection", "connect", "make_url")
