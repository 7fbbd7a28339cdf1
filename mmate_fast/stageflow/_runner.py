"""Running one stage function: its timeout (Go gives the handler a context deadline) and its
in-process retry, with the context rebuilt from ``globalData`` for every attempt (a failed attempt's
changes to the context are not kept). No Task per call: ``asyncio.timeout`` bounds the await.

Sync functions of a stage defined without ``timeout=`` run inline in the event loop (like plain
message handlers): fast, but not interrupted. With ``timeout=`` they run in a worker thread
(``asyncio.to_thread``): the stage fails on time, although the thread cannot be stopped and runs to
its end; what it returns then is discarded. Its sync compensation handler runs the same way.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mmate_fast.errors import FlowTimeoutError
from mmate_fast.stageflow.workflow import Stage, StageInfo


async def call_stage(stage: Stage, make_ctx: Callable[[], Any], *, workflow_id: str = "",
                     instance_id: str = "", state: Any = None) -> tuple[Any, Any]:
    """Run ``stage`` on a fresh context from ``make_ctx()``, retried per its policy; returns
    ``(ctx, returned)`` of the attempt that succeeded, or raises the last attempt's error (a timeout
    as FlowTimeoutError). A stage taking two arguments also gets a StageInfo."""
    retry = stage.retry
    attempts = retry.attempts if retry is not None else 1
    attempt = 0
    while True:
        attempt += 1
        try:
            ctx = make_ctx()
            args: tuple[Any, ...] = (ctx,)
            if stage.wants_info:
                args = (ctx, StageInfo(workflow_id, instance_id, stage.id, stage.index, attempt, state))
            if stage.is_async:
                returned = await _bounded(stage.fn(*args), stage.timeout, f"stage {stage.id!r}")
            elif stage.threaded:
                returned = await _bounded(asyncio.to_thread(stage.fn, *args), stage.timeout,
                                          f"stage {stage.id!r} (sync, in a worker thread)")
            else:
                returned = stage.fn(*args)
            return ctx, returned
        except Exception:
            if attempt >= attempts or retry is None:
                raise
            await asyncio.sleep(retry.delay(attempt))


async def call_compensation(stage: Stage, ctx: Any, result: Any) -> Any:
    """Run ``stage``'s compensation handler (``fn(ctx, result)`` or ``fn(ctx)``) within the stage's
    timeout; raises what it raised."""
    fn = stage.compensation
    assert fn is not None
    args = (ctx, result) if stage.compensate_wants_result else (ctx,)
    if stage.compensate_async:
        return await _bounded(fn(*args), stage.timeout, f"the compensation of stage {stage.id!r}")
    if stage.threaded:
        return await _bounded(asyncio.to_thread(fn, *args), stage.timeout,
                              f"the compensation of stage {stage.id!r} (sync, in a worker thread)")
    return fn(*args)


async def _bounded(awaitable: Awaitable[Any], timeout: float, what: str) -> Any:
    """Await ``awaitable`` within ``timeout`` seconds; FlowTimeoutError when the timeout expires (a
    TimeoutError the function raised itself passes unchanged)."""
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await awaitable
    except TimeoutError:
        if not deadline.expired():
            raise
        raise FlowTimeoutError(f"{what} did not finish within its timeout of {timeout:g} s") from None


def error_text(exc: BaseException) -> str:
    """The error text recorded in the state (Go records ``err.Error()``): the message, or the class
    name when there is none."""
    text = str(exc)
    return text if text else type(exc).__name__


__all__ = ["call_compensation", "call_stage", "error_text"]
