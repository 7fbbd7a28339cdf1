"""frames.Acks (both impls): a channel's acks, coalesced per loop turn, written in order."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from mmate_fast import errors

from ._impls import impl_params


@pytest.fixture(params=impl_params("frames"))
def F(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


class Conn:
    def __init__(self) -> None:
        self._wbuf = bytearray()
        self._ack_dirty: list[Any] = []
        self._flush_pending = False
        self.flushes = 0

    def _schedule_flush(self) -> None:
        self._flush_pending = True
        self.flushes += 1


class Chan:
    def __init__(self) -> None:
        self._closed_exc: BaseException | None = None

    def _raise_closed(self) -> None:
        assert self._closed_exc is not None
        raise self._closed_exc


def frames_of(F: ModuleType, buf: bytearray) -> list[tuple[int, int, int]]:
    """(method id, tag, bits) of each settle frame in buf."""
    out = []
    for i in range(0, len(buf), 21):
        f = bytes(buf[i:i + 21])
        out.append((f[10], int.from_bytes(f[11:19], "big"), f[19]))
    return out


def make(F: ModuleType) -> tuple[Any, Conn, Chan]:
    conn, ch = Conn(), Chan()
    return F.Acks(ch, conn, 3), conn, ch


def test_in_order_acks_of_a_turn_leave_as_one_multiple_ack(F: ModuleType) -> None:
    acks, conn, ch = make(F)
    for tag in (1, 2, 3):
        acks.ack(tag)
    assert conn._wbuf == b"" and conn._ack_dirty == [ch] and conn.flushes == 1 and acks.pending == 3
    acks.emit()
    assert frames_of(F, conn._wbuf) == [(80, 3, 1)] and acks.pending == 0 and acks.settled_upto == 3
    conn._wbuf.clear()
    acks.emit()  # nothing pending: nothing written
    acks.ack(4)
    acks.emit()
    assert frames_of(F, conn._wbuf) == [(80, 4, 0)]
    assert conn._wbuf[:3] == b"\x01\x00\x03"


def test_an_out_of_order_ack_goes_after_the_pending_run(F: ModuleType) -> None:
    acks, conn, _ = make(F)
    acks.ack(1)
    acks.ack(3)
    assert frames_of(F, conn._wbuf) == [(80, 1, 0), (80, 3, 0)] and acks.settled_upto == 1
    acks.ack(2)  # in order: fills the gap up to 3
    assert acks.settled_upto == 3
    acks.emit()
    assert frames_of(F, conn._wbuf)[-1] == (80, 2, 0)
    acks.ack(9, multiple=True)
    assert frames_of(F, conn._wbuf)[-1] == (80, 9, 1) and acks.settled_upto == 9


def test_settle_moves_the_watermark(F: ModuleType) -> None:
    acks, conn, _ = make(F)
    acks.settle(2, False)
    assert acks.settled_upto == 0
    acks.settle(1, False)
    assert acks.settled_upto == 2
    acks.settle(5, True)
    assert acks.settled_upto == 5 and conn._wbuf == b""


def test_a_closed_channel_raises_and_drops_its_pending_run(F: ModuleType) -> None:
    acks, conn, ch = make(F)
    acks.ack(1)
    ch._closed_exc = errors.ChannelClosedError("gone", 406, "PRECONDITION_FAILED")
    with pytest.raises(errors.ChannelClosedError):
        acks.ack(2)
    acks.emit()
    assert conn._wbuf == b""


def test_the_channel_id_is_checked(F: ModuleType) -> None:
    with pytest.raises(ValueError):
        F.Acks(Chan(), Conn(), 70000)
