"""FrameReader consumer hooks (both impls): a hooked consumer's deliveries go to its hook inside
feed, in wire order, and nothing else changes."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from pamqp import commands as pc
from pamqp import frame as pframe
from pamqp import heartbeat as pheartbeat

from ._impls import impl_params
from .test_frames import content


@pytest.fixture(params=impl_params("frames"))
def F(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def deliver(tag: int, ctag: str = "a", channel: int = 1, body: bytes = b"hello") -> bytes:
    return content(channel, pc.Basic.Deliver(ctag, tag, False, "ex", "rk"),
                   pc.Basic.Properties(message_id=f"m{tag}"), body)


def test_hooked_deliveries_go_to_the_hook_in_order(F: ModuleType) -> None:
    r = F.FrameReader()
    got: list[Any] = []
    r.set_hook(1, "a", got.append)
    data = deliver(1) + deliver(2, "b") + deliver(3)
    items = r.feed(data[:40]) + r.feed(data[40:])
    assert [d.delivery_tag for d in got] == [1]  # 3 came after b, which waits in the result
    assert [(d.consumer_tag, d.delivery_tag) for d in items] == [("b", 2), ("a", 3)]
    assert got[0].body == b"hello" and got[0].properties.message_id == "m1"
    got.clear()
    items = r.feed(deliver(4) + deliver(5, channel=2) + deliver(6))
    assert [d.delivery_tag for d in got] == [4] and [d.delivery_tag for d in items] == [5, 6]


def test_other_channels_and_kinds_are_not_hooked(F: ModuleType) -> None:
    r = F.FrameReader()
    got: list[Any] = []
    r.set_hook(1, "a", got.append)
    items = r.feed(deliver(1, channel=2) + deliver(2))
    assert got == [] and [d.delivery_tag for d in items] == [1, 2]
    get_ok = content(1, pc.Basic.GetOk(9, False, "ex", "rk", 0), pc.Basic.Properties(), b"x")
    items = r.feed(get_ok)
    assert got == [] and [d.delivery_tag for d in items] == [9]


def test_an_earlier_item_keeps_wire_order(F: ModuleType) -> None:
    r = F.FrameReader()
    got: list[Any] = []
    r.set_hook(1, "a", got.append)
    items = r.feed(pframe.marshal(pheartbeat.Heartbeat(), 0) + deliver(1))
    assert got == [] and [type(i).__name__ for i in items] == ["Heartbeat", "Delivery"]
    items = r.feed(deliver(2) + pframe.marshal(pc.Basic.Ack(5, False), 1) + deliver(3))
    assert [d.delivery_tag for d in got] == [2]
    assert [type(i).__name__ for i in items] == ["Confirm", "Delivery"] and items[1].delivery_tag == 3


def test_oversized_deliveries_are_not_hooked(F: ModuleType) -> None:
    r = F.FrameReader(max_message_size=3)
    got: list[Any] = []
    r.set_hook(1, "a", got.append)
    items = r.feed(deliver(1))
    assert got == [] and items[0].oversized == 5


def test_a_raising_hook_is_reported_and_reading_goes_on(F: ModuleType) -> None:
    r = F.FrameReader()
    seen: list[int] = []
    boom = ValueError("boom")

    def hook(d: Any) -> None:
        seen.append(d.delivery_tag)
        if d.delivery_tag == 1:
            raise boom

    r.set_hook(1, "a", hook)
    assert r.feed(deliver(1) + deliver(2)) == []
    assert seen == [1, 2]
    assert [(d.delivery_tag, e) for d, e in r.hook_errors] == [(1, boom)]


def test_clear_hook(F: ModuleType) -> None:
    r = F.FrameReader()
    got: list[Any] = []
    r.set_hook(1, "a", got.append)
    r.set_hook(1, "b", got.append)
    r.clear_hook(1, "a")
    assert [d.consumer_tag for d in r.feed(deliver(2, "b") + deliver(1))] == ["a"]
    assert [d.consumer_tag for d in got] == ["b"]
    r.clear_hook(1)
    r.clear_hook(1, "b")  # nothing left: no error
    assert len(r.feed(deliver(3, "b"))) == 1 and len(got) == 1


def test_a_hook_may_clear_itself(F: ModuleType) -> None:
    r = F.FrameReader()
    got: list[int] = []

    def hook(d: Any) -> None:
        got.append(d.delivery_tag)
        r.clear_hook(1)

    r.set_hook(1, "a", hook)
    items = r.feed(deliver(1) + deliver(2))
    assert got == [1] and [d.delivery_tag for d in items] == [2]


def test_set_hook_needs_a_callable(F: ModuleType) -> None:
    with pytest.raises(TypeError):
        F.FrameReader().set_hook(1, "a", None)


def test_a_tag_base_shifts_only_what_the_hook_gets(F: ModuleType) -> None:
    """set_hook(..., tag_base): the hook sees the broker's tag + base (a recovering channel's later
    generation); a delivery returned as an item keeps the broker's tag."""
    r = F.FrameReader()
    got: list[Any] = []
    base = 1 << 40
    r.set_hook(1, "a", got.append, base)
    items = r.feed(deliver(1) + deliver(2, "b") + deliver(3))
    assert [d.delivery_tag for d in got] == [base + 1]
    assert [d.delivery_tag for d in items] == [2, 3]
    r.set_hook(1, "a", got.append)  # replaced without a base
    r.feed(deliver(4))
    assert got[-1].delivery_tag == 4
    with pytest.raises(OverflowError):
        r.set_hook(1, "a", got.append, -1)
