"""Declare unless recently declared: the one mechanism behind the lazy dead-letter queues, the TTL
retry's delay queues and the scheduler's delay topology.

A declare is a broker round trip; these queues are used per failed or scheduled message, so each is
declared on first use and then only again when it may be gone: after ``refresh`` seconds (a queue
with ``x-expires`` must be declared again before it could expire: a publish does not reset its idle
timer, a declare does), or when the caller saw it vanish (:meth:`Declarations.forget`).
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any


class Declarations:
    """What one owner (a connection's dead-lettering, a TtlRetry, a Scheduler) has declared.

    Concurrent callers for one name share one declare, which runs in a task of its own: a caller that
    gives up (cancelled, timed out) does not cancel it for the others. A declare that fails raises to
    every caller waiting for it, and the next call declares again.
    """

    def __init__(self, refresh: float | None = None) -> None:
        #: seconds after which a declared name is declared again (None: once is enough)
        self.refresh = refresh
        self._declares: dict[str, asyncio.Task[None]] = {}
        self._declared_at: dict[str, float] = {}

    async def ensure(self, name: str, declare: Callable[[], Awaitable[Any]], *, force: bool = False) -> None:
        """Run ``declare()`` for ``name`` unless it succeeded within ``refresh`` seconds (or is running
        now); ``force``: declare again even if it did (a declare under way is still shared)."""
        task = self._declares.get(name)
        if task is not None and task.done() and (force or self._stale(name)):
            task = None
        if task is None:
            task = asyncio.get_running_loop().create_task(self._declare(name, declare))
            self._declares[name] = task
            task.add_done_callback(functools.partial(self._done, name))
        await asyncio.shield(task)

    def forget(self, name: str) -> None:
        """``name`` is gone (deleted since it was declared): the next :meth:`ensure` declares it."""
        task = self._declares.get(name)
        if task is not None and task.done():
            del self._declares[name]

    def _stale(self, name: str) -> bool:
        if self.refresh is None:
            return False
        return asyncio.get_running_loop().time() - self._declared_at.get(name, -float("inf")) >= self.refresh

    async def _declare(self, name: str, declare: Callable[[], Awaitable[Any]]) -> None:
        await declare()
        self._declared_at[name] = asyncio.get_running_loop().time()

    def _done(self, name: str, task: asyncio.Task[None]) -> None:
        # retrieves a failure (no "exception was never retrieved") and lets the next caller try again
        if (task.cancelled() or task.exception() is not None) and self._declares.get(name) is task:
            del self._declares[name]


__all__ = ["Declarations"]
