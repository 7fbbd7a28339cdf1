"""Runtime.send_now's join of several publishes (``_all_of``): done when every publish is, failing
with the first one's error in publish order, with no Task for futures."""
from __future__ import annotations

import asyncio

import pytest

from mmate_fast.stageflow._runtime import _all_of


async def test_done_only_when_every_publish_is() -> None:
    loop = asyncio.get_running_loop()
    a, b = loop.create_future(), loop.create_future()
    joined = _all_of([a, b])
    tasks_before = len(asyncio.all_tasks())
    a.set_result(True)
    await asyncio.sleep(0)
    assert not joined.done()
    b.set_result(True)
    assert await joined is None
    assert len(asyncio.all_tasks()) <= tasks_before


async def test_waits_for_all_then_fails_with_the_first_error_in_order() -> None:
    loop = asyncio.get_running_loop()
    a, b, c = loop.create_future(), loop.create_future(), loop.create_future()
    joined = _all_of([a, b, c])
    c.set_exception(RuntimeError("third"))
    b.set_exception(ValueError("second"))
    await asyncio.sleep(0)
    assert not joined.done()  # a is still pending: nothing is settled before every publish is
    a.set_result(True)
    with pytest.raises(ValueError, match="second"):
        await joined


async def test_a_cancelled_publish_cancels_the_join_and_coroutines_are_run() -> None:
    loop = asyncio.get_running_loop()
    ran: list[int] = []

    async def publish() -> None:
        ran.append(1)

    a = loop.create_future()
    joined = _all_of([publish(), a])
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await joined
    assert ran == [1]
