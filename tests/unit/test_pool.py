"""Channel ids, round robin and confirm tracker (both implementations)."""
from __future__ import annotations

import asyncio
from types import ModuleType

import pytest

from mmate_fast.errors import NoChannelsAvailableError, PublishNackedError, PublishReturnedError

from ._impls import impl_params


@pytest.fixture(params=impl_params("pool"))
def P(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def test_channel_ids(P: ModuleType) -> None:
    ids = P.ChannelIds(3)
    assert [ids.allocate() for _ in range(3)] == [1, 2, 3]
    with pytest.raises(NoChannelsAvailableError):
        ids.allocate()
    ids.release(2)
    ids.release(1)
    ids.release(99)
    assert ids.in_use() == 1
    assert ids.allocate() == 1 and ids.allocate() == 2


def test_round_robin(P: ModuleType) -> None:
    rr = P.RoundRobin(["a", "b", "c"])
    assert [rr.next() for _ in range(4)] == ["a", "b", "c", "a"]
    rr.replace(["x"])
    assert len(rr) == 1 and rr.next() == "x"
    rr.replace([])
    with pytest.raises(IndexError):
        rr.next()


def nack_err(tag: int) -> BaseException:
    return PublishNackedError(f"nacked {tag}")


async def test_confirm_tracker_in_order_and_ranges(P: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    t = P.ConfirmTracker(nack_err)
    futs = [loop.create_future() for _ in range(10)]
    assert [t.add(f) for f in futs] == list(range(1, 11))
    assert t.next_tag() == 11 and t.outstanding() == 10
    assert t.ack(1, False) == 1
    assert t.ack(4, True) == 3
    assert t.ack(4, True) == 0 and t.ack(99, False) == 0
    assert t.nack(6, False) == 1
    assert t.ack(7, False) == 1
    assert t.ack(10, True) == 4  # 5, 8, 9, 10
    assert t.outstanding() == 0 and (t.acked, t.nacked) == (9, 1)
    assert all(f.result() is True for i, f in enumerate(futs) if i != 5)
    with pytest.raises(PublishNackedError):
        futs[5].result()


async def test_confirm_tracker_values_settle_with_one_multiple_ack(P: ModuleType) -> None:
    """Waiters resolve with the value they were added with; one multiple ack settles the range;
    a nack in the middle fails only its own waiter; fail_all forgets the values."""
    loop = asyncio.get_running_loop()
    t = P.ConfirmTracker(nack_err)
    futs = [loop.create_future() for _ in range(6)]
    for i, f in enumerate(futs[:5]):
        (t.add_mandatory if i == 2 else t.add)(f, f"id-{i}")
    t.add(futs[5])  # no value: True
    assert t.nack(3, False) == 1
    assert t.ack(6, True) == 5
    assert [f.result() for i, f in enumerate(futs) if i != 2] == ["id-0", "id-1", "id-3", "id-4", True]
    with pytest.raises(PublishNackedError, match="nacked 3"):
        futs[2].result()
    late = loop.create_future()
    t.add(late, "id-late")
    assert t.fail_all(PublishNackedError("gone")) == 1
    again = loop.create_future()
    t.add(again)
    t.ack(t.next_tag() - 1, False)
    assert again.result() is True and isinstance(late.exception(), PublishNackedError)


async def test_confirm_tracker_returned_cancelled_fail_reset(P: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    t = P.ConfirmTracker(nack_err)
    plain = loop.create_future()
    m1, m2 = loop.create_future(), loop.create_future()
    cancelled = loop.create_future()
    assert t.mark_returned(PublishReturnedError("x")) is False
    t.add(plain)
    t.add_mandatory(m1)
    t.add_mandatory(m2)
    t.add(cancelled)
    t.add(None)
    cancelled.cancel()
    assert t.mark_returned(PublishReturnedError("no route")) is True
    assert t.ack(5, True) == 5
    assert plain.result() is True and m2.result() is True
    with pytest.raises(PublishReturnedError):
        m1.result()
    waiting = [loop.create_future() for _ in range(3)]
    for f in waiting:
        t.add(f)
    assert t.nack(7, True) == 2
    for f in waiting[:2]:
        with pytest.raises(PublishNackedError):
            f.result()
    assert t.fail_all(ConnectionError("closed")) == 1
    with pytest.raises(ConnectionError):
        waiting[2].result()
    t.reset()
    assert t.next_tag() == 1 and t.outstanding() == 0 and (t.acked, t.nacked) == (0, 0)


def test_confirm_tracker_many(P: ModuleType) -> None:
    t = P.ConfirmTracker(nack_err)
    for _ in range(10000):
        t.add(None)
    for tag in range(10000, 0, -2):  # out-of-order singles, then a range
        t.ack(tag, False)
    assert t.outstanding() == 5000
    assert t.ack(10000, True) == 5000 and t.outstanding() == 0
