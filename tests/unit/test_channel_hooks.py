"""The AMQP Channel registers a consumer callback's ``channel_hook`` with the connection's frame
reader (acking on that channel) and forgets it with the consumer; a raising hook is logged."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pamqp import commands as pc

from mmate_fast import errors
from mmate_fast.amqp.channel import Channel, _Consumer
from mmate_fast.amqp.connection import Connection
from mmate_fast.amqp.url import ConnectionParameters

from .test_frames import content


class Sink:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        return None


class Hooked:
    """A consumer callback with a channel_hook, like the subscription's compiled step."""

    def __init__(self) -> None:
        self.called: list[int] = []
        self.hooked: list[int] = []
        self.fail = False

    def __call__(self, delivery: Any) -> None:
        self.called.append(delivery.delivery_tag)

    def channel_hook(self, ack: Any) -> Any:
        def hook(delivery: Any) -> None:
            if self.fail:
                raise ValueError("boom")
            self.hooked.append(delivery.delivery_tag)
            ack(delivery.delivery_tag)
        return hook


def deliver(tag: int) -> bytes:
    return content(1, pc.Basic.Deliver("t", tag, False, "", "q"), pc.Basic.Properties(), b"{}")


async def setup(no_ack: bool = False) -> tuple[Connection, Channel, Hooked, Sink]:
    conn = Connection(ConnectionParameters(), asyncio.get_running_loop())
    sink = Sink()
    conn._transport = sink  # type: ignore[assignment]
    ch = Channel(conn, 1)
    ch._open = True
    conn._channels[1] = ch
    cb = Hooked()
    ch._add_consumer("t", _Consumer("q", cb, None, no_ack))
    return conn, ch, cb, sink


async def test_the_hook_takes_the_deliveries_and_acks_on_its_channel() -> None:
    conn, _ch, cb, sink = await setup()
    conn.data_received(deliver(1) + deliver(2))
    assert (cb.hooked, cb.called) == ([1, 2], [])
    await asyncio.sleep(0)
    assert sink.written == [bytes.fromhex("010001000000 0d 003c 0050 0000000000000002 01 ce".replace(" ", ""))]


async def test_no_ack_consumers_keep_the_callback() -> None:
    conn, _ch, cb, _ = await setup(no_ack=True)
    conn.data_received(deliver(1))
    assert (cb.hooked, cb.called) == ([], [1])


async def test_cancel_and_teardown_forget_the_hook() -> None:
    conn, ch, cb, _ = await setup()
    ch._forget_consumer("t")
    ch._consumers["t"] = _Consumer("q", cb, None, False)  # the callback alone
    conn.data_received(deliver(1))
    assert (cb.hooked, cb.called) == ([], [1])
    ch._add_consumer("t", _Consumer("q", cb, None, False))
    ch._teardown(errors.ChannelClosedError("gone", 200, "Normal shutdown"))
    conn._forget_channel(1)
    conn.data_received(deliver(2))
    assert (cb.hooked, cb.called) == ([], [1])


async def test_a_raising_hook_is_logged_and_the_connection_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    conn, _ch, cb, _ = await setup()
    cb.fail = True
    with caplog.at_level(logging.ERROR, "mmate_fast.amqp"):
        conn.data_received(deliver(1))
    assert "consumer callback on channel 1 failed (delivery tag 1 left unacked)" in caplog.text
    cb.fail = False
    conn.data_received(deliver(2))
    assert cb.hooked == [2] and not conn.is_closed and conn._reader.hook_errors == []


async def test_a_callback_that_answers_every_attribute_has_no_hook() -> None:
    from unittest.mock import Mock

    conn, ch, _, _ = await setup()
    cb = Mock(return_value=None)
    ch._add_consumer("m", _Consumer("q", cb, None, False))
    conn.data_received(content(1, pc.Basic.Deliver("m", 5, False, "", "q"), pc.Basic.Properties(), b"{}"))
    assert cb.call_count == 1 and cb.call_args.args[0].delivery_tag == 5


async def test_a_shifted_consumer_stays_hooked() -> None:
    """A recovering channel's later generation (RobustChannel._wrap -> _Shifted with its tag base):
    the hook is registered with the base, the handler sees shifted tags, the acks leave unshifted;
    a delivery that must wait in the result goes through the callback, shifted once."""
    from mmate_fast.amqp._robust_channel import _Shifted

    conn = Connection(ConnectionParameters(), asyncio.get_running_loop())
    sink = Sink()
    conn._transport = sink  # type: ignore[assignment]
    ch = Channel(conn, 1)
    ch._open = True
    conn._channels[1] = ch
    cb = Hooked()
    base = 1 << 40
    ch._add_consumer("t", _Consumer("q", _Shifted(cb, base), None, False))
    conn.data_received(deliver(1) + deliver(2))
    assert (cb.hooked, cb.called) == ([base + 1, base + 2], [])
    await asyncio.sleep(0)
    assert sink.written == [bytes.fromhex("010001000000 0d 003c 0050 0000000000000002 01 ce".replace(" ", ""))]
    other = content(1, pc.Basic.Deliver("other", 1, False, "", "q"), pc.Basic.Properties(), b"{}")
    ch._consumers["other"] = _Consumer("q", lambda d: None, None, False)
    conn.data_received(other + deliver(3))  # 3 waits behind "other" (wire order): the callback path
    assert (cb.hooked, cb.called) == ([base + 1, base + 2], [base + 3])
    with pytest.raises(ValueError):
        ch._acks.shifted(base)(5)
