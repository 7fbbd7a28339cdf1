"""Declare unless recently declared: one mechanism (reliability._declared.Declarations) behind the
lazy DLQs, the TTL retry's delay queues and the scheduler's delay topology."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.reliability._declared import Declarations
from mmate_fast.reliability.dead_lettering import DeadLettering
from mmate_fast.reliability.scheduling import Scheduler
from mmate_fast.reliability.ttl_retry import TtlRetry
from mmate_fast.transports import connect


class _Declare:
    """A declare that counts its calls and can be held open or made to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail: BaseException | None = None

    async def __call__(self) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail


async def test_declared_once_and_shared_by_concurrent_callers() -> None:
    declared, declare = Declarations(), _Declare()
    declare.gate = asyncio.Event()
    waiting = [asyncio.ensure_future(declared.ensure("q", declare)) for _ in range(5)]
    await asyncio.sleep(0)
    declare.gate.set()
    await asyncio.gather(*waiting)
    await declared.ensure("q", declare)
    assert declare.calls == 1


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_declare() -> None:
    declared, declare = Declarations(), _Declare()
    declare.gate = asyncio.Event()
    first = asyncio.ensure_future(declared.ensure("q", declare))
    second = asyncio.ensure_future(declared.ensure("q", declare))
    await asyncio.sleep(0)
    first.cancel()
    declare.gate.set()
    await second
    assert first.cancelled() and declare.calls == 1
    await declared.ensure("q", declare)
    assert declare.calls == 1


async def test_a_failed_declare_raises_to_its_callers_and_the_next_call_tries_again() -> None:
    declared, declare = Declarations(), _Declare()
    declare.fail = errors.PreconditionFailedError("406", 406, "PRECONDITION_FAILED")
    with pytest.raises(errors.PreconditionFailedError):
        await declared.ensure("q", declare)
    declare.fail = None
    await declared.ensure("q", declare)
    await declared.ensure("q", declare)
    assert declare.calls == 2


async def test_refresh_forget_and_force_declare_again() -> None:
    declared, declare = Declarations(refresh=0.05), _Declare()
    await declared.ensure("q", declare)
    await declared.ensure("q", declare)
    assert declare.calls == 1
    await asyncio.sleep(0.06)  # a queue with x-expires is declared again before it could expire
    await declared.ensure("q", declare)
    assert declare.calls == 2
    declared.forget("q")       # seen gone (a returned mandatory publish)
    await declared.ensure("q", declare)
    assert declare.calls == 3
    await declared.ensure("q", declare, force=True)
    assert declare.calls == 4
    await declared.ensure("other", declare)
    assert declare.calls == 5
    assert Declarations().refresh is None


async def test_the_three_users_share_the_mechanism() -> None:
    """The lazy DLQ, the TTL retry's delay queues and the scheduler's delay topology: one mechanism."""
    conn: Any = await connect("memory://declarations")
    try:
        ch = await conn.channel()
        retry = TtlRetry(connection=conn)
        users = [DeadLettering(conn), retry, Scheduler(None, channel=ch)]  # type: ignore[arg-type]
        assert [type(user._declared) for user in users] == [Declarations] * 3
        name = await retry.ensure_delay_queue("orders", 1000, conn)
        assert (await ch.queue_declare(name, passive=True)).queue == name
    finally:
        await conn.close()
