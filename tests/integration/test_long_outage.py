"""A long outage: a robust connection keeps trying, however many attempts it takes (the backoff is
capped and never overflows), and comes back once the broker answers again."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest

from mmate_fast.amqp.robust import RecoveryPolicy, connect_robust
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

#: past the attempt where 2.0 ** (attempt - 1) no longer fits a float
ATTEMPTS = 1030


async def test_recovery_outlasts_a_thousand_failed_attempts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="mmate_fast.amqp.recovery")  # 1000 warnings are noise here
    name = f"test.long-outage.{uuid.uuid4().hex[:8]}"
    async with TcpProxy() as proxy:
        # no pause between attempts: a thousand of them in a second or two instead of hours
        robust = await connect_robust(proxy.url(), policy=RecoveryPolicy(
            initial_delay=0.0, max_delay=0.0, jitter=0.0, wait_timeout=60.0))
        try:
            ch = await robust.channel()
            await ch.queue_declare(name, auto_delete=False)
            proxy.refusing = True
            proxy.cut()
            deadline = time.monotonic() + 60
            while robust._recovering is None:
                assert time.monotonic() < deadline, "the cut was not noticed"
                await asyncio.sleep(0.01)
            while robust.stats.failed_attempts < ATTEMPTS:
                assert time.monotonic() < deadline, f"only {robust.stats.failed_attempts} attempts in 60 s"
                assert not robust.is_closed, robust.stats.last_error
                assert robust._recovering is not None and not robust._recovering.done(), \
                    f"the recovery task ended after {robust.stats.failed_attempts} attempts: " \
                    f"{robust._recovering.exception()!r}"
                await asyncio.sleep(0.01)
            proxy.refusing = False
            await asyncio.wait_for(robust._connected.wait(), 30)
            assert robust.is_connected and robust.stats.reconnects == 1
            assert (await ch.queue_declare(name, passive=True)).queue == name
            await ch.queue_delete(name)
        finally:
            await robust.close()
