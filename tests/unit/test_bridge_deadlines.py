"""The bridge's request deadlines: 50 ms buckets with one loop timer each instead of a timer per
request (bridge._Deadlines)."""
from __future__ import annotations

import asyncio

import pytest

from mmate_fast import bridge


async def test_a_waiting_request_expires_at_the_end_of_its_bucket() -> None:
    loop = asyncio.get_running_loop()
    deadlines = bridge._Deadlines(loop)
    deadline = loop.time() + 0.05
    waiting, answered = loop.create_future(), loop.create_future()
    deadlines.add(deadline, waiting)
    bucket = deadlines.add(deadline, answered)
    answered.set_result("reply")
    bucket.discard(answered)
    with pytest.raises(bridge._RequestExpired):
        await asyncio.wait_for(waiting, 1.0)
    # not before its deadline, and at most one bucket (50 ms) after it
    assert deadline <= loop.time() <= deadline + 1 / bridge._DEADLINE_BUCKETS_PER_S + 0.2
    assert answered.result() == "reply"
    assert deadlines._buckets == {}  # the expired bucket is gone: nothing kept for done requests


async def test_requests_share_a_bucket_and_a_timer() -> None:
    loop = asyncio.get_running_loop()
    deadlines = bridge._Deadlines(loop)
    at = loop.time() + 30.0
    futs = [loop.create_future() for _ in range(100)]
    buckets = [deadlines.add(at + i * 1e-5, f) for i, f in enumerate(futs)]
    assert len({id(b) for b in buckets}) <= 2 and len(deadlines._buckets) <= 2  # 1 ms: one or two
    for b, f in zip(buckets, futs, strict=True):
        b.discard(f)
    assert all(not b for b in deadlines._buckets.values())  # answered requests are not kept
    await asyncio.sleep(0)
    assert not any(f.done() for f in futs)


async def test_a_deadline_in_the_past_expires_at_once() -> None:
    loop = asyncio.get_running_loop()
    deadlines = bridge._Deadlines(loop)
    fut = loop.create_future()
    deadlines.add(loop.time() - 1.0, fut)
    with pytest.raises(bridge._RequestExpired):
        await asyncio.wait_for(fut, 0.5)
