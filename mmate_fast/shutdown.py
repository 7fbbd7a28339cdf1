"""Graceful shutdown on SIGTERM/SIGINT: stop consuming, let in-flight handlers finish and ack, wait
for publisher confirms, close channels and the connection — all within a deadline.

``await run_until_signal(client)`` is the whole service main loop. For more control,
``install_signal_handlers(clients)`` returns a :class:`GracefulShutdown` whose ``wait()`` resolves
once every client is closed. A second signal while closing stops waiting for handlers: the
connection is closed at once (unacked messages are then redelivered by the broker).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable, Sequence
from typing import Any

from mmate_fast import errors

log = logging.getLogger("mmate_fast.shutdown")

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
#: extra seconds, beyond the deadline, for the AMQP close handshake before the socket is dropped
CLOSE_GRACE = 2.0


class GracefulShutdown:
    """Closes ``clients`` (anything with ``async close(timeout=...)``) once, when a signal arrives or
    :meth:`trigger` is called; ``done`` is set when they are all closed."""

    def __init__(self, clients: Iterable[Any], *, deadline: float = 10.0,
                 signals: Sequence[int] = DEFAULT_SIGNALS) -> None:
        if deadline <= 0:
            raise errors.ConfigurationError(f"deadline must be > 0 seconds, got {deadline!r}")
        self.clients = list(clients)
        self.deadline = deadline
        self.signals = tuple(signals)
        #: the signal that started the shutdown (None when triggered by code or not yet)
        self.signal_received: int | None = None
        self.done = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._installed: list[int] = []
        self._forced = False
        #: tasks to cancel once the clients are closed (``run_until_signal`` adds ``Client.run()``)
        self.stop_tasks: list[asyncio.Future[Any]] = []

    # ------------------------------------------------------------------ signals
    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> GracefulShutdown:
        """Register the handlers on ``loop`` (default: the running loop)."""
        self._loop = loop or asyncio.get_running_loop()
        for sig in self.signals:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
            self._installed.append(sig)
        return self

    def uninstall(self) -> None:
        """Remove the handlers again (the default signal behaviour comes back)."""
        if self._loop is None:
            return
        for sig in self._installed:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(sig)
        self._installed.clear()

    def _on_signal(self, sig: int) -> None:
        if self._task is None:
            log.info("%s received: shutting down (deadline %.1f s)", signal.Signals(sig).name, self.deadline)
            self.signal_received = sig
            self.trigger()
        elif not self._forced and not self.done.is_set():
            log.warning("%s received again: closing now without waiting for handlers",
                        signal.Signals(sig).name)
            self._forced = True
            self._task.cancel()

    # ------------------------------------------------------------------ closing
    def trigger(self) -> asyncio.Task[None]:
        """Start the shutdown (idempotent); returns its task."""
        if self._task is None:
            loop = self._loop or asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="mmate-graceful-shutdown")
        return self._task

    async def wait(self) -> None:
        """Until every client is closed."""
        await self.done.wait()

    async def _run(self) -> None:
        try:
            await self._close_all()
        except asyncio.CancelledError:
            await self._force_close()
        finally:
            for task in self.stop_tasks:
                if not task.done():
                    task.cancel()
            self.done.set()

    async def _close_all(self) -> None:
        results = await asyncio.gather(*(self._close_one(c) for c in self.clients), return_exceptions=True)
        for client, result in zip(self.clients, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("closing %r failed: %r", client, result)

    async def _close_one(self, client: Any) -> None:
        try:
            async with asyncio.timeout(self.deadline + CLOSE_GRACE):
                await client.close(timeout=self.deadline)
        except TimeoutError:
            log.warning("%r did not close within %.1f s: dropping its connection", client,
                        self.deadline + CLOSE_GRACE)
            await _drop_connection(client)

    async def _force_close(self) -> None:
        await asyncio.gather(*(_drop_connection(c) for c in self.clients), return_exceptions=True)


async def _drop_connection(client: Any) -> None:
    """Close the client's connection now (short timeout); unacked messages go back to the queue."""
    conn = getattr(client, "connection", None)
    if conn is None or getattr(conn, "is_closed", False):
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await conn.close()


def install_signal_handlers(client_or_clients: Any, *, deadline: float = 10.0,
                            signals: Sequence[int] = DEFAULT_SIGNALS,
                            loop: asyncio.AbstractEventLoop | None = None) -> GracefulShutdown:
    """On any of ``signals``, close the client(s) gracefully within ``deadline`` seconds.

    Call from inside the running loop. Returns the :class:`GracefulShutdown`; ``await it.wait()``
    to know when everything is closed.
    """
    clients = (list(client_or_clients) if isinstance(client_or_clients, list | tuple | set)
               else [client_or_clients])
    return GracefulShutdown(clients, deadline=deadline, signals=signals).install(loop)


async def run_until_signal(client: Any, *, deadline: float = 10.0,
                           signals: Sequence[int] = DEFAULT_SIGNALS) -> int | None:
    """Connect (if needed), consume with ``client.run()`` until a signal, then close gracefully.

    Returns the signal number that stopped it (None if ``run()`` ended by itself, e.g. the
    connection was lost; the client is closed then too).
    """
    shutdown = install_signal_handlers(client, deadline=deadline, signals=signals)
    try:
        await client.connect()
        run_task = asyncio.ensure_future(client.run())
        shutdown.stop_tasks.append(run_task)
        await asyncio.wait({run_task})  # ends on a signal (cancelled by the shutdown) or by itself
        shutdown.trigger()
        await shutdown.wait()
        error = None if run_task.cancelled() else run_task.exception()
        if error is not None:
            raise error
        return shutdown.signal_received
    finally:
        shutdown.uninstall()


__all__ = ["DEFAULT_SIGNALS", "GracefulShutdown", "install_signal_handlers", "run_until_signal"]
