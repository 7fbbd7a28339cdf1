"""``connect_robust()`` and ``RobustConnection`` on :class:`mmate_fast.amqp.robust.RobustConnection`.

As in aio-pika: reconnect every ``reconnect_interval`` seconds (URL option or keyword, default 5);
``fail_fast`` (default on) makes the first connect raise instead of retrying; ``close_callbacks`` are
called on every disconnect with its error, ``reconnect_callbacks`` after every reconnect; channels,
exchanges, queues, bindings and consumers come back by themselves.
"""
from __future__ import annotations

import asyncio
import logging
from ssl import SSLContext
from typing import Any

from mmate_fast import errors
from mmate_fast.compat.aio_pika._errors import raise_translated, translate
from mmate_fast.compat.aio_pika.abc import AbstractRobustConnection, SSLOptions, TimeoutType
from mmate_fast.compat.aio_pika.connection import Connection, make_url
from mmate_fast.compat.aio_pika.exceptions import CONNECTION_EXCEPTIONS
from mmate_fast.compat.aio_pika.robust_channel import RobustChannel
from mmate_fast.compat.aio_pika.tools import CallbackCollection

log = logging.getLogger("mmate_fast.compat.aio_pika")

_TRUE = ("1", "true", "yes", "y", "on", "enable", "enabled")


class RobustConnection(Connection, AbstractRobustConnection):
    """aio-pika's ``RobustConnection``: survives connection loss."""

    CHANNEL_REOPEN_PAUSE = 1
    CHANNEL_CLASS = RobustChannel

    def __init__(self, url: Any, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        super().__init__(url=url, loop=loop, **kwargs)
        self.reconnect_interval = float(self._query.get("reconnect_interval", 5))
        self.fail_fast = self._query.get("fail_fast", "1").lower() in _TRUE
        self.connection_attempt = 0
        self.reconnect_callbacks = CallbackCollection(self)

    @property
    def reconnecting(self) -> bool:
        return self.transport is not None and not self.transport.is_connected and not self.is_closed

    def __repr__(self) -> str:
        return f'<{type(self).__name__}: "{self}" {len(self._channels)} channels>'

    async def connect(self, timeout: TimeoutType = None) -> None:
        from mmate_fast.amqp.robust import RecoveryPolicy
        from mmate_fast.amqp.robust import connect_robust as amqp_connect_robust

        if self.is_closed:
            raise RuntimeError(f"{self!r} connection closed")
        interval = self.reconnect_interval
        policy = RecoveryPolicy(initial_delay=interval, max_delay=interval, multiplier=1.0, jitter=0.0)
        while True:
            try:
                self.transport = await amqp_connect_robust(self._params, policy=policy, timeout=timeout,
                                                           loop=self.loop)
                break
            except errors.MmateError as error:
                new = translate(error)
                if self.fail_fast or not isinstance(new, CONNECTION_EXCEPTIONS):
                    raise_translated(error)
                log.warning('Connection attempt to "%s" failed: %s. Reconnecting after %r seconds.',
                            self, new, interval)
                await asyncio.sleep(interval)
        robust = self.transport
        robust.on_disconnected.append(self._on_disconnected)
        robust.on_reconnected.append(self._on_reconnected)
        robust.on_failed.append(self._on_failed)
        self.connection_attempt += 1
        self.connected.set()

    def _on_disconnected(self, robust: Any, exc: BaseException | None) -> None:
        self.connected.clear()
        log.info("Connection to %s closed. Reconnecting after %r seconds.", self, self.reconnect_interval)
        self.close_callbacks(translate(exc) if exc is not None else None)

    def _on_reconnected(self, robust: Any) -> None:
        self.connection_attempt += 1
        self.connected.set()
        self.reconnect_callbacks()

    def _on_failed(self, robust: Any, exc: BaseException) -> None:
        self.connected.clear()
        if not self._closed.done():
            self._closed.set_result(True)

    async def reconnect(self) -> None:
        """Drop the current connection; it is re-established (and everything restored) at once."""
        robust = self.transport
        if robust is not None and robust.connection is not None:
            await robust.connection.close()

    def channel(self, channel_number: int | None = None, publisher_confirms: bool = True,
                on_return_raises: bool = False) -> Any:
        return super().channel(channel_number=channel_number, publisher_confirms=publisher_confirms,
                               on_return_raises=on_return_raises)


async def connect_robust(url: Any = None, *, host: str = "localhost", port: int = 5672, login: str = "guest",
                         password: str = "guest", virtualhost: str = "/", ssl: bool = False,
                         loop: asyncio.AbstractEventLoop | None = None, ssl_options: SSLOptions | None = None,
                         ssl_context: SSLContext | None = None, timeout: TimeoutType = None,
                         client_properties: dict[str, Any] | None = None,
                         connection_class: type[RobustConnection] = RobustConnection,
                         **kwargs: Any) -> Any:
    """Connect and stay connected (aio-pika's ``connect_robust``)."""
    connection = connection_class(
        make_url(url, host=host, port=port, login=login, password=password, virtualhost=virtualhost,
                 ssl=ssl, ssl_options=ssl_options, **kwargs),
        loop=loop, ssl_context=ssl_context, client_properties=client_properties, **kwargs)
    await connection.connect(timeout=timeout)
    return connection


__all__ = ("RobustConnection", "connect_robust")
