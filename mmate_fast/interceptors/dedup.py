"""Duplicate detection: a message id that was already handled is acked without running the handler.

The key is the envelope id plus, by default, the handler name (``per_handler=True``), so that several
handlers of one type each run once: if one of them failed, the redelivery runs only that one. The
key is recorded only **after the handler succeeded**, so a failed message can be retried. A
redelivery that arrives while the first delivery is still being handled waits for it, then is a
duplicate (it succeeded) or runs (it failed).

The store is pluggable (:class:`DedupStore`: ``contains``/``add``, sync or async, e.g. Redis for a
fleet); the default :class:`MemoryDedupStore` is an LRU bounded by ``max_entries`` with an optional
TTL. ``on_duplicate="reject"`` fails duplicates with DuplicateMessage (reason ``duplicate``) instead
of acking them silently.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, runtime_checkable

from mmate_fast.errors import ConfigurationError, DuplicateMessage
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor


@runtime_checkable
class DedupStore(Protocol):
    """Where handled message keys are remembered. Either method may be ``async``."""

    def contains(self, key: str) -> bool | Awaitable[bool]: ...

    def add(self, key: str) -> Awaitable[None] | None: ...


class MemoryDedupStore:
    """In-process LRU of keys: at most ``max_entries`` (oldest evicted), each kept ``ttl`` seconds
    (None: until evicted). ``clock`` is injectable for tests."""

    def __init__(self, max_entries: int = 10_000, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ConfigurationError(f"max_entries must be >= 1, not {max_entries!r}")
        if ttl is not None and not ttl > 0:
            raise ConfigurationError(f"ttl must be > 0 seconds or None, not {ttl!r}")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._keys: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<MemoryDedupStore {len(self._keys)}/{self.max_entries} ttl={self.ttl}>"

    def contains(self, key: str) -> bool:
        expires = self._keys.get(key)
        if expires is None:
            return False
        if expires < self._clock():
            del self._keys[key]
            return False
        self._keys.move_to_end(key)
        return True

    def add(self, key: str) -> None:
        self._keys[key] = self._clock() + self.ttl if self.ttl is not None else float("inf")
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_entries:
            self._keys.popitem(last=False)


class DeduplicationInterceptor(Interceptor):
    """Run each handler at most once per message id (see the module docstring)."""

    def __init__(self, store: DedupStore | None = None, *, max_entries: int = 10_000,
                 ttl: float | None = None, per_handler: bool = True,
                 on_duplicate: Literal["ack", "reject"] = "ack",
                 key: Callable[[ConsumeContext], str] | None = None) -> None:
        if on_duplicate not in ("ack", "reject"):
            raise ConfigurationError(f"on_duplicate must be 'ack' or 'reject', not {on_duplicate!r}")
        self.store: DedupStore = store if store is not None else MemoryDedupStore(max_entries, ttl)
        self.per_handler = per_handler
        self.on_duplicate = on_duplicate
        self._key = key
        self._in_flight: dict[str, asyncio.Future[bool]] = {}
        self.duplicates = 0

    def __repr__(self) -> str:
        return f"<DeduplicationInterceptor store={self.store!r} duplicates={self.duplicates}>"

    def key_of(self, ctx: ConsumeContext) -> str:
        if self._key is not None:
            return self._key(ctx)
        if self.per_handler:
            return f"{ctx.envelope.id} {ctx.handler.name}"
        return str(ctx.envelope.id)

    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        # in around_handler (not before_consume): it always gets its ``finally``, so an in-flight
        # marker cannot leak when a later interceptor's before_consume raises
        key = self.key_of(ctx)
        while True:
            if await _maybe_await(self.store.contains(key)):
                return self._duplicate(ctx, key)
            pending = self._in_flight.get(key)
            if pending is None:
                break
            await asyncio.shield(pending)  # the first delivery decides; then look again
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = done
        ok = False
        try:
            result = await call_next()
            await _maybe_await(self.store.add(key))
            ok = True
            return result
        finally:
            del self._in_flight[key]
            done.set_result(ok)

    def _duplicate(self, ctx: ConsumeContext, key: str) -> None:
        self.duplicates += 1
        ctx.items["duplicate"] = True
        if self.on_duplicate == "reject":
            raise DuplicateMessage(f"message {ctx.envelope.id} ({ctx.envelope.type}) was already handled")
        ctx.skipped = True
        return None


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


__all__ = ["DedupStore", "DeduplicationInterceptor", "MemoryDedupStore"]
