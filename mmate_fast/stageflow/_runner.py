"""Running one stage function: its timeout (async handlers; Go gives the handler a context deadline)
and its in-process retry, with the context rebuilt from ``globalData`` for every attempt (a failed
attempt's changes to the context are not kept). No Task per call: ``asyncio.timeout`` bounds the await.

Sync handlers run inline in the event loop (like plain message handlers): fast, but not interrupted
by the timeout — keep them short or make them ``async``.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
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
                try:
                    async with asyncio.timeout(stage.timeout):
                        returned = await stage.fn(*args)
                except TimeoutError:
                    raise FlowTimeoutError(f"stage {stage.id!r} did not finish within its timeout of "
                                           f"{stage.timeout:g} s") from None
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
    if not stage.compensate_async:
        return fn(*args)
    try:
        async with asyncio.timeout(stage.timeout):
            return await fn(*args)
    except TimeoutError:
        raise FlowTimeoutError(f"the compensation of stage {stage.id!r} did not finish within "
                               f"{stage.timeout:g} s") from None


def error_text(exc: BaseException) -> str:
    """The error text recorded in the state (Go records ``err.Error()``): the message, or the class
    name when there is none."""
    text = str(exc)
    return text if text else type(exc).__name__


__all__ = ["call_compensation", "call_stage", "error_text"]
