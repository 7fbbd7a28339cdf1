"""Per-handler timeout: a handler that runs longer is cancelled and the message fails with
:class:`~mmate_fast.errors.HandlerTimeout` (reason ``handler-timeout``: rejected / dead-lettered).

``seconds`` is the default for every type (None: no limit), ``per_type`` overrides it for message
classes or wire type names (a None value there means no limit for that type).

Only ``async`` handlers can be cancelled. A plain (sync) handler blocks the event loop and cannot be
interrupted; when one overruns, a warning is logged and its outcome stands.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mmate_fast.errors import ConfigurationError, HandlerTimeout
from mmate_fast.interceptors._types import TypeMap
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor

log = logging.getLogger("mmate_fast.interceptors.timeout")

_UNSET: Any = object()


class TimeoutInterceptor(Interceptor):
    """Bound the run time of each handler call."""

    def __init__(self, seconds: float | None = 30.0, *,
                 per_type: Mapping[Any, float | None] | None = None) -> None:
        for value in [seconds, *(per_type or {}).values()]:
            if value is not None and not value > 0:
                raise ConfigurationError(f"a handler timeout must be > 0 seconds or None, not {value!r}")
        self.seconds = seconds
        self._per_type: TypeMap[float | None] = TypeMap(per_type)

    def __repr__(self) -> str:
        return f"<TimeoutInterceptor seconds={self.seconds}>"

    def timeout_for(self, ctx: ConsumeContext) -> float | None:
        value = self._per_type.get(ctx.message, ctx.envelope.type, _UNSET) if self._per_type else _UNSET
        return self.seconds if value is _UNSET else value

    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        seconds = self.timeout_for(ctx)
        if seconds is None:
            return await call_next()
        if not getattr(ctx.handler, "is_async", True):
            started = time.perf_counter()
            result = await call_next()
            elapsed = time.perf_counter() - started
            if elapsed > seconds:
                log.warning("sync handler %s for %s (id %s) took %.3f s, over its %.3f s timeout "
                            "(sync handlers cannot be cancelled)", ctx.handler.name, ctx.envelope.type,
                            ctx.envelope.id, elapsed, seconds)
            return result
        try:
            async with asyncio.timeout(seconds) as cm:
                return await call_next()
        except TimeoutError as exc:
            if cm.expired():
                raise HandlerTimeout(f"handler {ctx.handler.name} for {ctx.envelope.type} "
                                     f"(id {ctx.envelope.id}) timed out after {seconds} s") from exc
            raise


__all__ = ["TimeoutInterceptor"]
