"""``aio_pika.pool.Pool``: a small pool of objects (connections, channels) made by a constructor,
handed out by ``async with pool.acquire() as item`` and reused."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PoolInstance:
    """What a pooled object may implement: ``close()`` and ``is_closed``."""

    async def close(self) -> None: ...


class Pool(Generic[T]):
    """Up to ``max_size`` objects from ``constructor(*args)``; ``acquire()`` waits for a free one."""

    def __init__(self, constructor: Callable[..., Awaitable[T]], *args: Any, max_size: int | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_event_loop()
        self.__closed = False
        self.__constructor = constructor
        self.__constructor_args = args
        self.__created = 0
        self.__item_set: set[Any] = set()
        self.__items: asyncio.Queue[Any] = asyncio.Queue()
        self.__lock = asyncio.Lock()
        self.__max_size = max_size

    @property
    def is_closed(self) -> bool:
        return self.__closed

    def acquire(self) -> PoolItemContextManager[T]:
        if self.__closed:
            raise asyncio.InvalidStateError("acquire operation on closed pool")
        return PoolItemContextManager[T](self)

    @property
    def _has_released(self) -> bool:
        return self.__items.qsize() > 0

    @property
    def _is_overflow(self) -> bool:
        return bool(self.__max_size) and self.__created >= self.__max_size  # type: ignore[operator]

    async def __create_item(self) -> T:
        async with self.__lock:
            if self._is_overflow:
                return await self.__items.get()
            item = await self.__constructor(*self.__constructor_args)
            self.__created += 1
            self.__item_set.add(item)
            return item

    async def _get(self) -> T:
        if self._is_overflow or self._has_released:
            return await self.__items.get()
        return await self.__create_item()

    def put(self, item: T) -> None:
        self.__items.put_nowait(item)

    async def close(self) -> None:
        async with self.__lock:
            self.__closed = True
            tasks = []
            for item in self.__item_set:
                closer = getattr(item, "close", None)
                if closer is not None and not getattr(item, "is_closed", False):
                    tasks.append(asyncio.ensure_future(closer()))
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Pool[T]:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        if self.__closed:
            return
        await asyncio.ensure_future(self.close())


class PoolItemContextManager(Generic[T]):
    """``async with pool.acquire() as item``: the item goes back to the pool on exit."""

    def __init__(self, pool: Pool[T]) -> None:
        self.pool = pool
        self.item: T | None = None

    async def __aenter__(self) -> T:
        self.item = await self.pool._get()
        return self.item

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        if self.item is not None:
            self.pool.put(self.item)


__all__ = ("Pool", "PoolInstance", "PoolItemContextManager")
