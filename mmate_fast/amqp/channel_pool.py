"""A pool of publishing channels on one connection (any transport: RabbitMQ or memory://).

Publishing never takes a lock: a publish is appended to the connection's write buffer in one step,
so any number of coroutines can publish at once. The pool spreads publishes round-robin over
``size`` channels (each channel is a separate process inside RabbitMQ, so several channels use more
of the broker's cores).

A channel the broker closed (a refused publish: 404 no such exchange, 406 ...) is reopened by the
pool itself; only the refused publish fails. While no channel is open: ``await publish()`` (and
``drain``/``wait_for_confirms``) wait for the reopened one, bounded by their ``timeout``;
``publish_nowait`` buffers the publish (up to ``max_buffered``, then ChannelClosedError saying a
repair is under way) and sends it, in order, once a channel is open again; its confirm future
settles then. On a RobustConnection the channels heal themselves and the pool never needs to.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from mmate_fast import errors
from mmate_fast._checks import publish_names
from mmate_fast._ext import load
from mmate_fast._transport.properties import encode_properties

_pool = load("pool")

log = logging.getLogger("mmate_fast.amqp")

#: how long awaited calls wait for the pool to reopen a channel when they were given no timeout
REPAIR_WAIT = 30.0

#: (confirm future or None, body, exchange, routing key, properties, mandatory, confirm value)
_Buffered = tuple["asyncio.Future[Any] | None", Any, str, str, Any, bool, Any]


def _settle_from(target: asyncio.Future[bool], source: asyncio.Future[bool]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())


class ChannelPool:
    """Round-robin publishing channels; ``await pool.open()`` before use, ``await pool.close()`` after."""

    def __init__(self, connection: Any, size: int = 4, *, publisher_confirms: bool = False,
                 max_buffered: int = 100_000) -> None:
        if size < 1:
            raise errors.InvalidArgumentError(f"ChannelPool size must be >= 1, not {size}", "size")
        self._conn = connection
        self.size = size
        self.publisher_confirms = publisher_confirms
        #: how many ``publish_nowait`` calls may wait for a reopened channel
        self.max_buffered = max_buffered
        #: channels reopened after the broker closed one
        self.reopened = 0
        self._channels: list[Any] = []
        self._rr = _pool.RoundRobin([])
        self._repair: asyncio.Task[None] | None = None
        self._repair_error: BaseException | None = None
        self._buffer: deque[_Buffered] = deque()
        self._closed = False

    async def open(self, timeout: float | None = None) -> ChannelPool:
        self._channels = [await self._conn.channel(publisher_confirms=self.publisher_confirms,
                                                   timeout=timeout) for _ in range(self.size)]
        self._rr.replace(list(self._channels))
        return self

    async def __aenter__(self) -> ChannelPool:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def channels(self) -> tuple[Any, ...]:
        """The pool's channels (open or being reopened), e.g. for a health check."""
        return tuple(self._channels)

    # ------------------------------------------------------------------ picking a channel
    def _pick(self) -> Any | None:
        """The next open channel, or None while every channel is being reopened (repair started)."""
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
        self._check_usable()
        self._start_repair()
        return None

    def _check_usable(self) -> None:
        if self._closed:
            raise errors.ChannelClosedError("the channel pool is closed: open a new one")
        if getattr(self._conn, "is_closed", False):
            raise errors.ConnectionClosedError("the pool's connection is closed")
        if not self._channels:
            raise errors.ChannelClosedError("the channel pool is not open: await pool.open() first")

    def channel(self) -> Any:
        """The next open channel (round-robin). Starts reopening closed ones in the background;
        ChannelClosedError while none is open yet (``await pool.drain()`` waits for one)."""
        ch = self._pick()
        if ch is None:
            raise errors.ChannelClosedError(
                "every channel of the pool was closed by the broker and is being reopened: await "
                "pool.publish() or pool.drain() waits for it")
        return ch

    async def _open_channel(self, timeout: float | None) -> Any:
        """An open channel once nothing buffered is still waiting (keeps publishes in order)."""
        if not self._buffer:
            ch = self._pick()
            if ch is not None:
                return ch
        wait = REPAIR_WAIT if timeout is None else timeout
        try:
            async with asyncio.timeout(wait):
                while True:
                    await asyncio.wait([self._start_repair()])
                    error = self._repair_error
                    if not self._buffer:
                        ch = self._pick()  # raises once the pool or its connection is closed
                        if ch is not None:
                            return ch
                    if error is not None:
                        raise error
        except TimeoutError:
            raise errors.OperationTimeout(
                f"the channel pool could not reopen a channel within {wait} s") from None

    # ------------------------------------------------------------------ publish
    def publish_nowait(self, body: bytes, exchange: str = "", routing_key: str = "",
                       properties: Any = None, *, mandatory: bool = False,
                       confirm_value: Any = True) -> asyncio.Future[Any] | None:
        if not self._buffer:
            ch = self._pick()
            if ch is not None:
                return ch.publish_nowait(body, exchange, routing_key, properties, mandatory=mandatory,
                                         confirm_value=confirm_value)
        return self._buffered(body, exchange, routing_key, properties, mandatory, confirm_value)

    def publish_sink(self) -> Any | None:
        """With one channel and nothing buffered: that channel's ``publish_sink()`` (the publisher's
        one-call path), else None (several channels take turns through ``publish_nowait``)."""
        if self._buffer or len(self._channels) != 1 or self._closed:
            return None
        sink = getattr(self._channels[0], "publish_sink", None)
        return sink() if sink is not None else None

    def _buffered(self, body: bytes, exchange: str, routing_key: str, properties: Any,
                  mandatory: bool, value: Any = True) -> asyncio.Future[Any] | None:
        """Keep a publish made while no channel is open; sent once one is (see the module doc)."""
        self._check_usable()
        publish_names(exchange, routing_key)
        if properties is not None and type(properties) is not bytes:
            properties = encode_properties(properties)
        if len(self._buffer) >= self.max_buffered:
            raise errors.ChannelClosedError(
                f"{len(self._buffer)} publishes already wait for the pool to reopen its channel "
                "(max_buffered): await pool.publish() waits for the repair")
        fut: asyncio.Future[Any] | None = (
            asyncio.get_running_loop().create_future() if self.publisher_confirms else None)
        self._buffer.append((fut, body, exchange, routing_key, properties, mandatory, value))
        self._start_repair()
        return fut

    async def publish(self, body: bytes, exchange: str = "", routing_key: str = "",
                      properties: Any = None, *, mandatory: bool = False,
                      timeout: float | None = None) -> None:
        ch = await self._open_channel(timeout)
        await ch.publish(body, exchange, routing_key, properties, mandatory=mandatory, timeout=timeout)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for write-buffer room (the channels share one connection)."""
        await (await self._open_channel(timeout)).drain(timeout)

    async def wait_for_confirms(self, timeout: float | None = None) -> None:
        if self._buffer:
            await self._open_channel(timeout)
        await asyncio.gather(*(c.wait_for_confirms(timeout) for c in self._channels if c.is_open))

    # ------------------------------------------------------------------ repair
    def _start_repair(self) -> asyncio.Task[None]:
        task = self._repair
        if task is None or task.done():
            task = self._repair = asyncio.get_running_loop().create_task(self._repair_in_background())
        return task

    async def _repair_in_background(self) -> None:
        """``repair()`` as a task nobody awaits: its error is kept for the waiters, never orphaned."""
        self._repair_error = None
        try:
            await self.repair()
        except Exception as exc:
            log.warning("the channel pool could not reopen a channel: %s", exc)
            self._repair_error = exc
            self._fail_buffered(exc)

    async def repair(self, timeout: float | None = None) -> None:
        """Replace every closed channel with a new one, then send what was buffered meanwhile."""
        while True:
            fresh = []
            for ch in self._channels:
                if ch.is_open:
                    fresh.append(ch)
                    continue
                self._check_usable()
                fresh.append(await self._conn.channel(publisher_confirms=self.publisher_confirms,
                                                      timeout=timeout))
                self.reopened += 1
                log.warning("channel pool: reopened a channel the broker closed (%d so far)", self.reopened)
            self._channels = fresh
            self._rr.replace(list(fresh))
            if self._flush_buffered():
                return

    def _flush_buffered(self) -> bool:
        """Send what waits for a channel; False if every channel closed again meanwhile."""
        buf = self._buffer
        while buf:
            ch = self._pick()
            if ch is None:
                return False
            fut, body, exchange, routing_key, props, mandatory, value = buf.popleft()
            if fut is not None and fut.done():
                continue
            try:
                sent = ch.publish_nowait(body, exchange, routing_key, props, mandatory=mandatory,
                                         confirm_value=value)
            except errors.MmateError as exc:
                if fut is None:
                    log.error("a publish buffered while the pool reopened its channel failed: %s", exc)
                else:
                    fut.set_exception(exc)
                continue
            if fut is not None and sent is not None:
                sent.add_done_callback(lambda source, target=fut: _settle_from(target, source))
        return True

    def _fail_buffered(self, exc: BaseException) -> None:
        buf, self._buffer = self._buffer, deque()
        lost = 0
        for fut, *_ in buf:
            if fut is None:
                lost += 1
            elif not fut.done():
                fut.set_exception(exc)
        if lost:
            log.error("%d unconfirmed publishes buffered while the pool reopened its channel were not "
                      "sent: %s", lost, exc)

    async def close(self, timeout: float | None = None) -> None:
        self._closed = True
        if self._repair is not None and not self._repair.done():
            self._repair.cancel()
        self._fail_buffered(errors.ChannelClosedError("the channel pool was closed before this publish "
                                                      "could be sent"))
        for ch in self._channels:
            if ch.is_open:
                await ch.close(timeout)
        self._channels = []
        self._rr.replace([])
