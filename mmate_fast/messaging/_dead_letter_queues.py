"""``dlq.{queue}`` declared lazily: on a subscription's first failure, once, shared by concurrent
failures; a failed declare is tried again by the next failure."""
from __future__ import annotations

import asyncio
import functools
from typing import Any

from mmate_fast.messaging import topology
from mmate_fast.messaging._channels import close_quietly


class DeadLetterQueues:
    """The dead-letter queues one connection has declared (or is declaring)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._declares: dict[str, asyncio.Task[None]] = {}

    async def ensure(self, queue: str) -> str:
        """Declare ``dlq.{queue}`` (durable, as ``topology.declare_dead_letter_queue``) unless done
        already; returns its name.

        Concurrent callers share one declare. It runs on a channel of its own, so a refusal (e.g. 406:
        a ``dlq.{queue}`` with other arguments exists) closes nothing else; it raises to the callers
        waiting for it and the next call tries again.
        """
        task = self._declares.get(queue)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.get_running_loop().create_task(self._declare(queue))
            self._declares[queue] = task
            task.add_done_callback(functools.partial(self._done, queue))
        await asyncio.shield(task)
        return topology.dead_letter_queue(queue)

    def forget(self, queue: str) -> None:
        """``dlq.{queue}`` is gone (deleted since it was declared): the next ``ensure`` declares it."""
        task = self._declares.get(queue)
        if task is not None and task.done():
            del self._declares[queue]

    def _done(self, queue: str, task: asyncio.Task[None]) -> None:
        # retrieves a failure (no "exception was never retrieved") and lets the next caller try again
        if (task.cancelled() or task.exception() is not None) and self._declares.get(queue) is task:
            del self._declares[queue]

    async def _declare(self, queue: str) -> None:
        channel = await self._connection.channel()
        try:
            await topology.declare_dead_letter_queue(channel, queue)
        finally:
            await close_quietly(channel)
