"""Bounded input in the frame reader (both implementations): a delivery larger than
``max_message_size`` is discarded as its body frames arrive (counted, never buffered) and handed on
marked ``oversized``; ``frame_max`` is always enforced (there is no "no limit")."""
from __future__ import annotations

import struct
from types import ModuleType
from typing import Any

import pytest
from pamqp import commands as pc
from pamqp import frame as pframe
from pamqp import header as pheader

from mmate_fast.errors import FrameError

from ._impls import NO_EXT, impl_params

MiB = 1 << 20
CHUNK = 131072 - 8


@pytest.fixture(params=impl_params("frames"))
def F(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def frame(ftype: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def deliver(channel: int = 1, tag: int = 1) -> bytes:
    return pframe.marshal(pc.Basic.Deliver("ctag", tag, False, "ex", "rk"), channel)


def header(size: int, channel: int = 1, **props: Any) -> bytes:
    return pframe.marshal(pheader.ContentHeader(0, size, pc.Basic.Properties(**props)), channel)


def bodies(size: int, channel: int = 1, fill: bytes = b"b") -> bytes:
    out = bytearray()
    for start in range(0, size, CHUNK):
        out += frame(3, channel, fill * min(CHUNK, size - start))
    return bytes(out)


def message(size: int, channel: int = 1, tag: int = 1, **props: Any) -> bytes:
    return deliver(channel, tag) + header(size, channel, **props) + bodies(size, channel)


def test_default_max_message_size_is_rabbitmqs_128_mib(F: ModuleType) -> None:
    assert F.FrameReader().max_message_size == 128 * MiB
    assert F.FrameReader(131072, 5000).max_message_size == 5000


def test_a_declared_body_of_2_to_the_62_is_never_buffered(F: ModuleType) -> None:
    reader = F.FrameReader()  # default limit
    assert reader.feed(deliver() + header(1 << 62, message_id="huge")) == []
    one = frame(3, 1, b"x" * CHUNK)
    for _ in range(200):  # 26 MB of body frames: discarded as they come
        assert reader.feed(one) == []
        assert reader.pending() == 0
    assert reader.feed(one[:100]) == [] and reader.pending() == 100  # only the unfinished frame


def test_oversized_delivery_is_marked_and_the_next_one_is_normal(F: ModuleType) -> None:
    reader = F.FrameReader(131072, MiB)
    data = message(2 * MiB, message_id="big", headers={"k": "v"}) + message(10, tag=2, message_id="small")
    seen_pending = []
    items: list[Any] = []
    for start in range(0, len(data), 65536):
        items += reader.feed(data[start:start + 65536])
        seen_pending.append(reader.pending())
    assert max(seen_pending) < 2 * 131072  # never more than a frame or so held
    big, small = items
    assert big.body == b"" and big.oversized == 2 * MiB and big.delivery_tag == 1
    assert big.undecodable == f"body of {2 * MiB} bytes exceeds max_message_size {MiB}"
    assert big.properties.message_id == "big" and big.properties.headers == {"k": "v"}
    assert big.raw_properties is None
    assert small.body == b"b" * 10 and small.oversized == 0 and small.undecodable is None
    assert small.properties.message_id == "small"
    assert reader.oversized_count == 1


def test_the_limit_is_inclusive(F: ModuleType) -> None:
    at, over = F.FrameReader(131072, 1000).feed(message(1000) + message(1001, tag=2))
    assert (len(at.body), at.oversized, at.undecodable) == (1000, 0, None)
    assert (over.body, over.oversized) == (b"", 1001)


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_oversized_assembly_does_not_depend_on_how_bytes_arrive(F: ModuleType, step: int) -> None:
    data = message(300_000) + message(5, tag=2)
    reader = F.FrameReader(131072, 200_000)
    items: list[Any] = []
    for start in range(0, len(data), step):
        items += reader.feed(data[start:start + step])
    assert [(d.oversized, len(d.body)) for d in items] == [(300_000, 0), (0, 5)]
    assert reader.pending() == 0


def test_get_ok_and_return_are_bounded_too(F: ModuleType) -> None:
    get_ok = pframe.marshal(pc.Basic.GetOk(7, False, "ex", "rk", 3), 1)
    ret = pframe.marshal(pc.Basic.Return(312, "NO_ROUTE", "ex", "rk"), 2)
    reader = F.FrameReader(131072, 100)
    items = reader.feed(get_ok + header(200) + bodies(200)
                               + ret + header(300, 2) + bodies(300, 2))
    assert [(d.kind, d.oversized, d.body) for d in items] == [(1, 200, b""), (2, 300, b"")]
    assert reader.oversized_count == 2
    assert items[0].message_count == 3 and items[1].reply_text == "NO_ROUTE"


def test_oversized_on_one_channel_does_not_touch_another(F: ModuleType) -> None:
    reader = F.FrameReader(131072, 1000)
    data = (deliver(1) + header(5000, 1) + frame(3, 1, b"a" * 3000)
            + message(10, channel=2, tag=9)
            + frame(3, 1, b"a" * 2000))
    items = reader.feed(data)
    assert [(d.channel, d.oversized, len(d.body)) for d in items] == [(2, 0, 10), (1, 5000, 0)]


def test_oversized_body_longer_than_declared_is_still_a_frame_error(F: ModuleType) -> None:
    reader = F.FrameReader(131072, 100)
    with pytest.raises(FrameError) as info:
        reader.feed(deliver() + header(150) + frame(3, 1, b"x" * 100) + frame(3, 1, b"x" * 51))
    assert info.value.reply_code == 505


def test_oversized_with_undecodable_properties_says_both(F: ModuleType) -> None:
    bad_props = b"\x00\x3c\x00\x00" + struct.pack(">Q", 500) + b"\x80\x00\xff"  # content type runs past
    (d,) = F.FrameReader(131072, 100).feed(deliver() + frame(2, 1, bad_props) + frame(3, 1, b"x" * 500))
    assert d.oversized == 500 and d.body == b"" and d.raw_properties == b"\x80\x00\xff"
    assert d.undecodable is not None and d.undecodable.endswith(
        "; body of 500 bytes exceeds max_message_size 100")


def test_delivery_oversized_field_constructor_and_repr(F: ModuleType) -> None:
    assert F.Delivery().oversized == 0
    d = F.Delivery(delivery_tag=3, oversized=2 * MiB, undecodable="too big")
    assert d.oversized == 2 * MiB and d.body == b""
    assert f"oversized={2 * MiB}" in repr(d)
    assert "oversized" not in repr(F.Delivery())


@pytest.mark.parametrize("bad", [0, -1, 4095, 1 << 32])
def test_frame_max_has_no_off_switch(F: ModuleType, bad: int) -> None:
    with pytest.raises(ValueError, match="frame_max"):
        F.FrameReader(bad)
    reader = F.FrameReader(4096)
    with pytest.raises(ValueError, match="frame_max"):
        reader.frame_max = bad
    assert reader.frame_max == 4096
    with pytest.raises(FrameError) as info:  # still enforced
        reader.feed(struct.pack(">BHI", 3, 1, 5000))
    assert info.value.reply_code == 501


@pytest.mark.parametrize("bad", [0, -5])
def test_max_message_size_has_no_off_switch(F: ModuleType, bad: int) -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        F.FrameReader(131072, bad)
    reader = F.FrameReader()
    with pytest.raises(ValueError, match="max_message_size"):
        reader.max_message_size = bad
    reader.max_message_size = 10
    assert reader.feed(message(11))[0].oversized == 11


def test_limits_can_change_between_messages(F: ModuleType) -> None:
    reader = F.FrameReader(4096)
    reader.frame_max = 131072  # as the connection does after tune
    (d,) = reader.feed(message(100_000))
    assert len(d.body) == 100_000


@pytest.mark.parametrize("bad", [8192.0, "8192", True, None])
def test_limits_are_ints(F: ModuleType, bad: Any) -> None:
    with pytest.raises(TypeError, match="frame_max must be an int"):
        F.FrameReader(bad)
    with pytest.raises(TypeError, match="max_message_size must be an int"):
        F.FrameReader(8192, bad)


@pytest.mark.skipif(NO_EXT, reason="MMATE_NO_EXTENSIONS=1")
def test_both_twins_give_the_same_deliveries() -> None:
    import importlib

    stream = (message(5000, message_id="a") + message(3, tag=2) + deliver(2) + header(0, 2)
              + message(4097, channel=3, tag=4, headers={"x": 1}))
    seen = []
    for name in ("mmate_fast._py.frames", "mmate_fast._cy.frames"):
        reader = importlib.import_module(name).FrameReader(131072, 4096)
        items = reader.feed(stream)
        seen.append([(repr(d), d.oversized, d.undecodable, d.body, d.properties.to_dict()) for d in items])
    assert seen[0] == seen[1]
    assert [entry[1] for entry in seen[0]] == [5000, 0, 0, 4097]
