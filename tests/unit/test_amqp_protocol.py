"""AMQP client protocol behaviour against a scripted peer: handshake, tuning, heartbeats, blocked,
and the client's answer to bad input (corrupt/oversized frames, silence, refusal)."""
from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Any

import pytest
from pamqp import body as pbody
from pamqp import commands as spec
from pamqp import frame as pframe
from pamqp import header as pheader

from mmate_fast import errors
from mmate_fast.amqp import connect
from tests.unit.scripted_peer import PeerSession, ScriptedPeer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_handshake_negotiates_frame_max_and_heartbeat() -> None:
    seen: dict[str, object] = {}

    async def script(p: PeerSession) -> None:
        await p.read_protocol_header()
        p.send(spec.Connection.Start(server_properties={"product": "x"}, mechanisms="PLAIN AMQPLAIN",
                                     locales="en_US"))
        start_ok = await p.expect(spec.Connection.StartOk)
        seen["start_ok"] = start_ok
        p.send(spec.Connection.Tune(channel_max=100, frame_max=8192, heartbeat=60))
        seen["tune_ok"] = await p.expect(spec.Connection.TuneOk)
        seen["open"] = await p.expect(spec.Connection.Open)
        p.send(spec.Connection.OpenOk())
        await p.expect(spec.Connection.Close)
        p.send(spec.Connection.CloseOk())

    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url.rstrip("/") + "/myvhost?heartbeat=5&frame_max=65536", timeout=5)
        assert conn.frame_max == 8192
        assert conn.channel_max == 100
        assert conn.heartbeat == 5
        assert conn.server_properties == {"product": "x"}
        await conn.close()
    start_ok = seen["start_ok"]
    assert start_ok.mechanism == "PLAIN"  # type: ignore[attr-defined]
    assert start_ok.response == "\0guest\0guest"  # type: ignore[attr-defined]
    caps = start_ok.client_properties["capabilities"]  # type: ignore[attr-defined]
    assert caps["publisher_confirms"] is True and caps["connection.blocked"] is True
    tune_ok = seen["tune_ok"]
    assert (tune_ok.frame_max, tune_ok.channel_max, tune_ok.heartbeat) == (8192, 100, 5)  # type: ignore[attr-defined]
    assert seen["open"].virtual_host == "myvhost"  # type: ignore[attr-defined]


async def test_refused_port_raises_broker_unreachable_quickly() -> None:
    port = _free_port()
    with pytest.raises(errors.BrokerUnreachableError) as info:
        await connect(f"amqp://guest:secret-pw@127.0.0.1:{port}/", timeout=3)
    assert "secret-pw" not in str(info.value)


async def test_silent_server_raises_handshake_timeout() -> None:
    async def script(p: PeerSession) -> None:
        await p.read_protocol_header()
        await asyncio.sleep(10)

    async with ScriptedPeer(script) as peer:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(errors.HandshakeTimeout):
            await connect(peer.url, timeout=0.5)
        assert loop.time() - t0 < 3


async def test_access_refused_raises_authentication_error_without_password() -> None:
    async def script(p: PeerSession) -> None:
        await p.read_protocol_header()
        p.send(spec.Connection.Start(server_properties={}, mechanisms="PLAIN", locales="en_US"))
        await p.expect(spec.Connection.StartOk)
        p.send(spec.Connection.Close(403, "ACCESS_REFUSED - Login was refused", 0, 0))
        await p.expect(spec.Connection.CloseOk)

    async with ScriptedPeer(script) as peer:
        url = peer.url.replace("guest:guest", "bob:hunter2")
        with pytest.raises(errors.AuthenticationError) as info:
            await connect(url, timeout=5)
    assert info.value.reply_code == 403
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)


async def test_missing_mechanism_is_authentication_error() -> None:
    async def script(p: PeerSession) -> None:
        await p.read_protocol_header()
        p.send(spec.Connection.Start(server_properties={}, mechanisms="AMQPLAIN", locales="en_US"))
        await asyncio.sleep(2)

    async with ScriptedPeer(script) as peer:
        with pytest.raises(errors.AuthenticationError, match="PLAIN"):
            await connect(peer.url, timeout=5)


@pytest.mark.parametrize(
    ("garbage", "code"),
    [
        (b"\x01\x00\x01\x00\x00\x00\x04\x00\x14\x00\x0b\x00", 501),  # bad frame-end byte
        (b"\x09\x00\x00\x00\x00\x00\x00\xce", 501),  # unknown frame type 9
        (b"\x03\x00\x01\x00\x00\x00\x03abc\xce", 505),  # body frame with no content method pending
        (b"\x01\x00\x01\x00\x00\x00\x04\xff\xff\xff\xff\xce", 502),  # unknown method id
        (b"\x01\x00\x01\x00\x10\x00\x00" + b"\x00" * 16, 501),  # oversized frame (> frame_max)
    ],
)
async def test_corrupt_frame_closes_connection_with_code(garbage: bytes, code: int) -> None:
    close_seen: list[object] = []

    async def script(p: PeerSession) -> None:
        await p.handshake(frame_max=131072)
        await p.open_channel()
        await p.expect(spec.Queue.Declare)
        p.send_raw(garbage)
        try:
            obj = await p.expect(spec.Connection.Close, timeout=3)
            close_seen.append(obj)
        except (EOFError, TimeoutError):
            pass

    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url, timeout=5)
        ch = await conn.channel()
        with pytest.raises(errors.FrameError) as info:
            await ch.queue_declare("q", timeout=5)
        assert info.value.reply_code == code
        assert conn.is_closed
        await asyncio.wait_for(peer.done.wait(), 5)
    assert close_seen and close_seen[0].reply_code == code  # type: ignore[attr-defined]


async def test_heartbeats_are_sent_and_silence_is_detected() -> None:
    got_heartbeat = asyncio.Event()

    async def script(p: PeerSession) -> None:
        await p.handshake(heartbeat=1)
        # read raw bytes: a heartbeat frame is 08 0000 00000000 ce
        while True:
            chunk = await p.reader.read(1024)
            if not chunk:
                return
            if b"\x08\x00\x00\x00\x00\x00\x00\xce" in chunk:
                got_heartbeat.set()

    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url, timeout=5)
        assert conn.heartbeat == 1
        await asyncio.wait_for(got_heartbeat.wait(), 3)
        # the peer never sends anything: after 2 intervals the client drops the connection
        await asyncio.wait_for(asyncio.shield(conn.closed), 5)
        assert isinstance(conn._closed_exc, errors.HeartbeatTimeout)


def _blocking_peer(proceed: asyncio.Event) -> ScriptedPeer:
    """A peer that blocks publishing ("low on memory") until ``proceed`` is set, then takes one
    publish and the close."""
    async def script(p: PeerSession) -> None:
        await p.handshake()
        await p.open_channel()
        p.send(spec.Connection.Blocked(reason="low on memory"))
        await proceed.wait()
        p.send(spec.Connection.Unblocked())
        await p.expect(spec.Basic.Publish)
        await p.expect(spec.Connection.Close)
        p.send(spec.Connection.CloseOk())

    return ScriptedPeer(script)


async def _until_blocked(conn: Any) -> None:
    for _ in range(50):
        if conn.blocked:
            return
        await asyncio.sleep(0.02)


async def test_blocked_and_unblocked_gate_publishing() -> None:
    proceed = asyncio.Event()
    events: list[str] = []

    async with _blocking_peer(proceed) as peer:
        conn = await connect(peer.url, timeout=5)
        conn.on_blocked.append(lambda c, reason: events.append(f"blocked:{reason}"))
        conn.on_unblocked.append(lambda c, reason: events.append("unblocked"))
        ch = await conn.channel()
        await _until_blocked(conn)
        assert conn.blocked and conn.blocked_reason == "low on memory"
        publish = asyncio.ensure_future(ch.publish(b"x", "", "q", timeout=5))
        await asyncio.sleep(0.1)
        assert not publish.done()  # waits while blocked
        proceed.set()
        await asyncio.wait_for(publish, 5)
        assert events == ["blocked:low on memory", "unblocked"]
        await conn.close()


async def test_broker_connection_close_fails_pending_calls() -> None:
    async def script(p: PeerSession) -> None:
        await p.handshake()
        await p.open_channel()
        await p.expect(spec.Queue.Declare)
        p.send(spec.Connection.Close(320, "CONNECTION_FORCED - shutdown", 0, 0))
        await p.expect(spec.Connection.CloseOk)

    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url, timeout=5)
        ch = await conn.channel()
        with pytest.raises(errors.ConnectionClosedError) as info:
            await ch.queue_declare("q", timeout=5)
        assert info.value.reply_code == 320
        with pytest.raises(errors.ConnectionClosedError):
            await conn.channel()


async def test_publish_confirm_timeout_is_named_error() -> None:
    async def script(p: PeerSession) -> None:
        await p.handshake()
        await p.open_channel()
        await p.expect(spec.Confirm.Select)
        p.send(spec.Confirm.SelectOk(), 1)
        await p.expect(spec.Basic.Publish)  # ... and never confirm it
        await p.expect(spec.Connection.Close)
        p.send(spec.Connection.CloseOk())

    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url, timeout=5)
        ch = await conn.channel(publisher_confirms=True)
        with pytest.raises(errors.OperationTimeout, match="no publisher confirm"):
            await ch.publish(b"x", "", "q", timeout=0.2)
        assert ch.is_open
        await conn.close()


async def test_ack_in_the_same_turn_as_close_leaves_before_connection_close() -> None:
    order: list[str] = []

    async def script(p: PeerSession) -> None:
        await p.handshake()
        await p.open_channel()
        while True:
            _, obj = await p.read_frame()
            order.append(type(obj).__name__)
            if isinstance(obj, spec.Connection.Close):
                p.send(spec.Connection.CloseOk())
                return

    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url, timeout=5)
        ch = await conn.channel()
        ch.basic_ack(1)  # coalesced: written at the end of the loop turn...
        await conn.close()  # ...which must not put it after connection.close (the broker drops it)
        await asyncio.wait_for(peer.done.wait(), 5)
    assert order == ["Ack", "Close"]


async def test_publish_while_blocked_raises_connection_blocked_with_the_reason() -> None:
    proceed = asyncio.Event()
    async with _blocking_peer(proceed) as peer:
        conn = await connect(peer.url, timeout=5)
        ch = await conn.channel()
        await _until_blocked(conn)
        with pytest.raises(errors.ConnectionBlockedError) as info:
            await ch.publish(b"x", "", "q", timeout=0.2)
        assert info.value.reason == "low on memory"
        text = str(info.value)
        assert "low on memory" in text and "0.2" in text and "blocked" in text
        with pytest.raises(errors.ConnectionBlockedError):
            await conn.drain(timeout=0.1)
        assert ch.is_open  # nothing was sent; the next publish works once unblocked
        proceed.set()
        await ch.publish(b"x", "", "q", timeout=5)
        await conn.close()


async def test_drain_timeout_on_a_full_socket_buffer_is_a_named_error() -> None:
    async def script(p: PeerSession) -> None:
        await p.handshake()
        await p.open_channel()
        await asyncio.sleep(3)  # reads nothing more

    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url, timeout=5)
        await conn.channel()
        conn.pause_writing()  # as the transport does when its buffer is full
        with pytest.raises(errors.OperationTimeout, match="write buffer") as info:
            await conn.drain(timeout=0.1)
        assert not isinstance(info.value, errors.ConnectionBlockedError)
        conn.resume_writing()
        await conn.close(timeout=0.5)


# --------------------------------------------------------------------------- bounded input
async def test_frame_max_zero_in_the_url_keeps_a_frame_limit_before_tune() -> None:
    async def script(p: PeerSession) -> None:
        await p.read_protocol_header()
        p.send_raw(struct.pack(">BHI", 1, 0, 1 << 30))  # a 1 GiB "connection.start", then silence
        await asyncio.sleep(5)

    async with ScriptedPeer(script) as peer:
        with pytest.raises(errors.FrameError) as info:  # at once, not a handshake timeout
            await connect(peer.url + "?frame_max=0", timeout=3)
    assert info.value.reply_code == 501 and "frame_max" in str(info.value)


async def test_frame_max_zero_in_the_url_takes_the_brokers_value_and_enforces_it() -> None:
    tune_ok: list[Any] = []

    async def script(p: PeerSession) -> None:
        await p.read_protocol_header()
        p.send(spec.Connection.Start(server_properties={}, mechanisms="PLAIN", locales="en_US"))
        await p.expect(spec.Connection.StartOk)
        p.send(spec.Connection.Tune(channel_max=10, frame_max=8192, heartbeat=0))
        tune_ok.append(await p.expect(spec.Connection.TuneOk))
        await p.expect(spec.Connection.Open)
        p.send(spec.Connection.OpenOk())
        await p.expect(spec.Channel.Open)
        p.send_raw(struct.pack(">BHI", 3, 1, 9000) + b"x" * 9000 + b"\xce")  # > 8192
        await p.expect(spec.Connection.Close, timeout=3)

    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url + "?frame_max=0", timeout=5)
        assert conn.frame_max == 8192
        with pytest.raises(errors.FrameError) as info:
            await conn.channel(timeout=5)
        assert info.value.reply_code == 501 and conn.is_closed
        await asyncio.wait_for(peer.done.wait(), 5)
    assert tune_ok[0].frame_max == 8192  # type: ignore[attr-defined]


async def test_a_broker_frame_max_below_the_amqp_minimum_is_refused() -> None:
    async def script(p: PeerSession) -> None:
        await p.read_protocol_header()
        p.send(spec.Connection.Start(server_properties={}, mechanisms="PLAIN", locales="en_US"))
        await p.expect(spec.Connection.StartOk)
        p.send(spec.Connection.Tune(channel_max=10, frame_max=1024, heartbeat=0))
        await asyncio.sleep(3)

    async with ScriptedPeer(script) as peer:
        with pytest.raises(errors.AMQPConnectionError, match="frame_max 1024") as info:
            await connect(peer.url + "?frame_max=0", timeout=2)
    assert not isinstance(info.value, errors.HandshakeTimeout)


def _content(channel: int, tag: int, body: bytes, frame_max: int = 131072) -> bytes:
    out = pframe.marshal(spec.Basic.Deliver("ctag", tag, False, "ex", "rk"), channel)
    out += pframe.marshal(pheader.ContentHeader(0, len(body), spec.Basic.Properties(message_id=f"m{tag}")),
                          channel)
    for start in range(0, len(body), frame_max - 8):
        out += pframe.marshal(pbody.ContentBody(body[start:start + frame_max - 8]), channel)
    return out


async def test_oversized_delivery_is_marked_counted_logged_and_the_connection_stays_up(
        caplog: pytest.LogCaptureFixture) -> None:
    async def script(p: PeerSession) -> None:
        await p.handshake()
        channel = await p.open_channel()
        await p.expect(spec.Basic.Consume)
        p.send(spec.Basic.ConsumeOk("ctag"), channel)
        p.send_raw(_content(channel, 1, b"x" * 300_000) + _content(channel, 2, b"small"))
        await p.expect(spec.Connection.Close)
        p.send(spec.Connection.CloseOk())

    got: list[Any] = []
    two = asyncio.Event()

    def on_message(d: Any) -> None:
        got.append(d)
        if len(got) == 2:
            two.set()

    caplog.set_level(logging.WARNING, "mmate_fast.amqp")
    async with ScriptedPeer(script) as peer:
        conn = await connect(peer.url + "?max_message_size=100000", timeout=5)
        assert conn.oversized_messages == 0
        ch = await conn.channel()
        await ch.basic_consume("q", on_message, consumer_tag="ctag")
        await asyncio.wait_for(two.wait(), 5)
        big, small = got
        assert (big.body, big.oversized, big.properties.message_id) == (b"", 300_000, "m1")
        assert big.undecodable == "body of 300000 bytes exceeds max_message_size 100000"
        assert (small.body, small.oversized, small.undecodable) == (b"small", 0, None)
        assert conn.oversized_messages == 1 and not conn.is_closed and ch.is_open
        await conn.close()
    logged = [r for r in caplog.records if "max_message_size" in r.getMessage()]
    assert len(logged) == 1
    text = logged[0].getMessage()
    assert "300000" in text and "100000" in text and "delivery tag 1" in text
