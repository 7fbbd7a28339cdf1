"""aio-pika's callback collections (``close_callbacks``, ``return_callbacks``, ``reconnect_callbacks``)
and the small helpers aio-pika code imports from ``aio_pika.tools``."""
from __future__ import annotations

import asyncio
import inspect
import logging
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterator, MutableSet
from itertools import chain
from typing import Any

log = logging.getLogger("mmate_fast.compat.aio_pika")


class _Done:
    """An awaitable that is already finished (what calling an empty collection returns)."""

    __slots__ = ()

    def __await__(self) -> Any:
        return
        yield  # pragma: no cover  (makes this a generator)


_DONE = _Done()


class CallbackCollection(MutableSet[Any]):
    """A set of callbacks called as ``cb(sender, *args)`` (a nested collection as ``coll(*args)``).

    Calling the collection calls every callback, logs (and swallows) what they raise, and returns
    an awaitable that finishes when the coroutine callbacks have. ``add(cb, weak=True)`` keeps only
    a weak reference; ``freeze()`` makes it read-only."""

    def __init__(self, sender: Any) -> None:
        self._sender = sender if isinstance(sender, weakref.ReferenceType) else weakref.ref(sender)
        self._strong: set[Any] | frozenset[Any] = set()
        self._weak: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(self, callback: Any, weak: bool = False) -> None:
        if self.is_frozen:
            raise RuntimeError("Collection frozen")
        if not callable(callback):
            raise ValueError("Callback is not callable")
        if weak or isinstance(callback, CallbackCollection):
            self._weak.add(callback)
        else:
            self._strong.add(callback)  # type: ignore[union-attr]

    def remove(self, callback: Any) -> None:
        if self.is_frozen:
            raise RuntimeError("Collection frozen")
        if callback in self._strong:
            self._strong.remove(callback)  # type: ignore[union-attr]
        else:
            self._weak.remove(callback)

    def discard(self, callback: Any) -> None:
        if self.is_frozen:
            raise RuntimeError("Collection frozen")
        if callback in self._strong:
            self._strong.remove(callback)  # type: ignore[union-attr]
        elif callback in self._weak:
            self._weak.remove(callback)

    def clear(self) -> None:
        if self.is_frozen:
            raise RuntimeError("Collection frozen")
        self._strong.clear()  # type: ignore[union-attr]
        self._weak.clear()

    @property
    def is_frozen(self) -> bool:
        return isinstance(self._strong, frozenset)

    def freeze(self) -> None:
        if self.is_frozen:
            raise RuntimeError("Collection already frozen")
        self._strong = frozenset(self._strong)

    def unfreeze(self) -> None:
        if not self.is_frozen:
            raise RuntimeError("Collection is not frozen")
        self._strong = set(self._strong)

    def __contains__(self, x: object) -> bool:
        return x in self._strong or x in self._weak

    def __len__(self) -> int:
        return len(self._strong) + len(self._weak)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(chain(self._strong, self._weak)))

    def __bool__(self) -> bool:
        return bool(self._strong) or bool(self._weak)

    def __hash__(self) -> int:
        return id(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        sender = self._sender()
        pending: list[asyncio.Future[Any]] = []
        for cb in list(self):
            try:
                if isinstance(cb, CallbackCollection):
                    result = cb(*args, **kwargs)
                else:
                    result = cb(sender, *args, **kwargs)
                if inspect.isawaitable(result):
                    pending.append(asyncio.ensure_future(result))
            except Exception as error:
                log.error("Callback %r error: %s: %s", cb, type(error).__name__, error)
        if not pending:
            return _DONE
        return asyncio.gather(*pending, return_exceptions=True)


def ensure_awaitable(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """``func`` as a coroutine function (a plain function's result is awaited if awaitable; a plain
    function gets aio-pika's DeprecationWarning)."""
    if inspect.iscoroutinefunction(func):
        return func
    if inspect.isfunction(func):
        warnings.warn(f"You probably registering the non-coroutine function {func!r}. This is deprecated "
                      "and will be removed in future releases. Moreover, it can block the event loop",
                      DeprecationWarning, stacklevel=2)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    return wrapper


def create_task(func: Callable[..., Any], *args: Any, loop: asyncio.AbstractEventLoop | None = None,
                **kwargs: Any) -> Awaitable[Any]:
    """Run ``func(*args, **kwargs)`` as a task (a plain function: on the next loop turn)."""
    loop = loop or asyncio.get_event_loop()
    if inspect.iscoroutinefunction(func):
        return loop.create_task(func(*args, **kwargs))
    future: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        if future.done():
            return
        try:
            future.set_result(func(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)

    loop.call_soon(run)
    return future


__all__ = ("CallbackCollection", "create_task", "ensure_awaitable")
