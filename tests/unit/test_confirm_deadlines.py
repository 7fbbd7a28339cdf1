"""The publisher's one confirm timer: a confirm that never comes fails its publish with
OperationTimeout (never before the wait, at most two ticks after), settled ones are dropped, and
the timer stops when nothing is pending. (On the broker, confirms come: here a target that never
confirms stands in for a lost one.)"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.contracts import Event
from mmate_fast.messaging.publisher import Publisher, _ConfirmDeadlines


@dataclass
class DlTick(Event):
    n: int = 0


class _NeverConfirms:
    """A target in confirm mode whose confirms only come when ``confirm()`` is called."""

    def __init__(self) -> None:
        self.sent: list[tuple[asyncio.Future[Any], Any]] = []

    def publish_nowait(self, body: bytes, exchange: str = "", routing_key: str = "", properties: Any = None,
                       *, mandatory: bool = False, confirm_value: Any = True) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((fut, confirm_value))
        return fut

    def confirm(self, i: int) -> None:
        fut, value = self.sent[i]
        if not fut.done():  # as the confirm tracker: a waiter failed meanwhile stays failed
            fut.set_result(value)

    async def drain(self, timeout: float | None = None) -> None:
        await asyncio.sleep(0)


async def test_unconfirmed_publish_times_out_confirmed_one_does_not() -> None:
    target = _NeverConfirms()
    pub = Publisher(target, confirms=True)
    pub._deadlines = deadlines = _ConfirmDeadlines(0.3)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    lost = pub.publish_event(DlTick(n=1))
    kept = pub.publish_event(DlTick(n=2))
    target.confirm(1)
    assert await kept == target.sent[1][1]  # the message id
    with pytest.raises(errors.OperationTimeout, match="may or may not be stored"):
        await lost
    waited = loop.time() - t0
    assert 0.3 <= waited <= 0.3 + 2 * deadlines._tick_s + 0.5
    await asyncio.sleep(2.5 * deadlines._tick_s)
    assert deadlines._timer is None and not deadlines._batches  # nothing pending: the timer stopped
    target.confirm(0)  # a confirm after the timeout changes nothing
    assert isinstance(lost.exception(), errors.OperationTimeout)  # type: ignore[union-attr]
