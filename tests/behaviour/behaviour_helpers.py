"""Helpers shared by the behaviour tests."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def wait_until(pred: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``pred`` until true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def drain_queue(ch: Any, queue: str, timeout: float = 3.0, expect: int | None = None) -> list[Any]:
    """basic_get (no_ack) until empty — or until ``expect`` messages arrived (waiting for them)."""
    out: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        d = await ch.basic_get(queue, no_ack=True)
        if d is not None:
            out.append(d)
            continue
        if expect is None or len(out) >= expect:
            return out
        if loop.time() > deadline:
            return out
        await asyncio.sleep(0.01)


async def queue_depth(conn: Any, queue: str) -> int | None:
    """Messages in ``queue``, or None when it does not exist (a passive declare on its own channel)."""
    from mmate_fast import errors

    ch = await conn.channel()
    try:
        return (await ch.queue_declare(queue, passive=True)).message_count
    except errors.NotFoundError:
        return None
    finally:
        if ch.is_open:
            await ch.close()
