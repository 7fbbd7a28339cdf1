"""A pool of publishing channels on one connection (any transport: RabbitMQ or memory://).

Publishing never takes a lock: a publish is appended to the connection's write buffer in one step,
so any number of coroutines can publish at once. The pool spreads publishes round-robin over
``size`` channels (each channel is a separate process inside RabbitMQ, so several channels use more
of the broker's cores) and replaces a channel that the broker closed.
"""
from __future__ import annotations

import asyncio
from typing import Any

from mmate_fast import errors
from mmate_fast._ext import load

_pool = load("pool")


class ChannelPool:
    """Round-robin publishing channels; ``await pool.open()`` before use, ``await pool.close()`` after."""

    def __init__(self, connection: Any, size: int = 4, *, publisher_confirms: bool = False) -> None:
        if size < 1:
            raise ValueError("ChannelPool size must be >= 1")
        self._conn = connection
        self.size = size
        self.publisher_confirms = publisher_confirms
        self._channels: list[Any] = []
        self._rr = _pool.RoundRobin([])
        self._repair: asyncio.Task[None] | None = None

    async def open(self, timeout: float | None = None) -> ChannelPool:
        self._channels = [await self._conn.channel(publisher_confirms=self.publisher_confirms,
                                                   timeout=timeout) for _ in range(self.size)]
        self._rr.replace(list(self._channels))
        return self

    async def __aenter__(self) -> ChannelPool:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _pick(self) -> Any:
        if len(self._channels) == 1:
            ch = self._channels[0]
            if ch.is_open:
                return ch
        for attempt in range(len(self._channels)):
            ch = self._rr.next()
            if ch.is_open:
                if attempt:  # skipped a closed one: replace it in the background
                    self._start_repair()
                return ch
        if getattr(self._conn, "is_closed", False):
            raise errors.ConnectionClosedError("the pool's connection is closed")
        raise errors.ChannelClosedError("every channel of the pool is closed; call await pool.repair()")

    def channel(self) -> Any:
        """The next open channel (round-robin). Starts repairing closed ones in the background."""
        return self._pick()

    def publish_nowait(self, body: bytes, exchange: str = "", routing_key: str = "",
                       properties: Any = None, *, mandatory: bool = False) -> asyncio.Future[bool] | None:
        return self._pick().publish_nowait(body, exchange, routing_key, properties, mandatory=mandatory)

    async def publish(self, body: bytes, exchange: str = "", routing_key: str = "",
                      properties: Any = None, *, mandatory: bool = False,
                      timeout: float | None = None) -> None:
        await self.channel().publish(body, exchange, routing_key, properties, mandatory=mandatory,
                                     timeout=timeout)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for write-buffer room (the channels share one connection)."""
        await self._pick().drain(timeout)

    async def wait_for_confirms(self, timeout: float | None = None) -> None:
        await asyncio.gather(*(c.wait_for_confirms(timeout) for c in self._channels if c.is_open))

    def _start_repair(self) -> None:
        if self._repair is None or self._repair.done():
            self._repair = asyncio.get_running_loop().create_task(self.repair())

    async def repair(self, timeout: float | None = None) -> None:
        """Replace every closed channel with a new one."""
        fresh = []
        for ch in self._channels:
            if ch.is_open:
                fresh.append(ch)
            else:
                fresh.append(await self._conn.channel(publisher_confirms=self.publisher_confirms,
                                                      timeout=timeout))
        self._channels = fresh
        self._rr.replace(list(fresh))

    async def close(self, timeout: float | None = None) -> None:
        if self._repair is not None:
            self._repair.cancel()
        for ch in self._channels:
            if ch.is_open:
                await ch.close(timeout)
        self._channels = []
        self._rr.replace([])
