"""The publisher's confirm bookkeeping, on a target whose confirms come only when the test says so
(on the broker they come by themselves): the one confirm timer (a confirm that never comes fails
its publish with OperationTimeout, never before the wait, at most two ticks after; settled ones are
dropped; the timer stops when nothing is pending) and publish_batch's window of unconfirmed
publishes."""
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


async def test_publish_batch_keeps_at_most_window_unconfirmed() -> None:
    """Chunks of window // 2: the next chunk goes out only once at most ``window`` would be
    unconfirmed, and the batch returns only when every publish is confirmed."""
    target = _NeverConfirms()
    pub = Publisher(target, confirms=True)
    batch = asyncio.ensure_future(pub.publish_batch([DlTick(n=i) for i in range(9)], window=4))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(target.sent) == 4  # two chunks of 2 in flight, the third waits for room
    target.confirm(0)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(target.sent) == 4  # one confirm frees one place: not enough for a chunk of 2
    target.confirm(1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(target.sent) == 6
    for i in range(2, 6):
        target.confirm(i)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(target.sent) == 9  # 6 and 7, then 8: three unconfirmed, within the window of 4
    target.confirm(6)
    target.confirm(8)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not batch.done()  # 7 is still unconfirmed
    target.confirm(7)
    ids = await asyncio.wait_for(batch, 5)
    assert len(ids) == 9 and len(set(ids)) == 9
