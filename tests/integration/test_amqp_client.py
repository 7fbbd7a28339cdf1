"""The AMQP client against the real RabbitMQ on 127.0.0.1:5672."""
from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import pytest

from mmate_fast import errors
from mmate_fast.amqp import BasicProperties, ChannelPool, Connection, Typed, connect
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"


def _name(prefix: str) -> str:
    return f"test.{prefix}.{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def conn() -> AsyncIterator[Connection]:
    c = await connect(URL, timeout=10)
    try:
        yield c
    finally:
        await c.close()


async def test_bad_credentials_named_error() -> None:
    with pytest.raises(errors.AuthenticationError) as info:
        await connect("amqp://guest:not-the-password@127.0.0.1:5672/", timeout=10)
    assert info.value.reply_code == 403
    assert "not-the-password" not in str(info.value)


async def test_unknown_vhost_is_named_error() -> None:
    with pytest.raises(errors.AMQPConnectionError) as info:
        await connect("amqp://guest:guest@127.0.0.1:5672/no-such-vhost-xyz", timeout=10)
    assert info.value.reply_code == 530


async def test_declare_publish_get_roundtrip(conn: Connection) -> None:
    ch = await conn.channel()
    q = _name("rt")
    ok = await ch.queue_declare(q, auto_delete=False, arguments={"x-message-ttl": 40000})
    assert ok.queue == q and ok.message_count == 0
    props = BasicProperties(content_type="application/json", delivery_mode=2, message_id="m1",
                            correlation_id="c1", timestamp=1735787045, type="T",
                            headers={"n": 40000, "big": 2**40, "s": "x", "b": True,
                                     "prio": Typed("B", 5), "nested": {"a": [1, "two"]}})
    await ch.publish(b'{"a":1}', "", q, props)
    msg = None
    for _ in range(50):
        msg = await ch.basic_get(q, no_ack=False)
        if msg is not None:
            break
        await asyncio.sleep(0.02)
    assert msg is not None
    assert msg.body == b'{"a":1}'
    assert msg.routing_key == q and msg.exchange == ""
    p = msg.properties
    assert (p.content_type, p.delivery_mode, p.message_id, p.correlation_id, p.timestamp, p.type) == (
        "application/json", 2, "m1", "c1", 1735787045, "T")
    assert p.headers["n"] == 40000 and p.headers["big"] == 2**40 and p.headers["prio"] == 5
    assert p.headers["nested"] == {"a": [1, "two"]}
    ch.basic_ack(msg.delivery_tag)
    assert await ch.basic_get(q) is None
    assert await ch.queue_delete(q) == 0


async def test_channel_error_closes_only_that_channel(conn: Connection) -> None:
    bad = await conn.channel()
    good = await conn.channel()
    with pytest.raises(errors.NotFoundError) as info:
        await bad.queue_declare(_name("missing"), passive=True)
    assert info.value.reply_code == 404
    assert not bad.is_open
    with pytest.raises(errors.NotFoundError):
        await bad.queue_declare("x")
    q = _name("alive")
    assert (await good.queue_declare(q, auto_delete=True)).queue == q
    assert not conn.is_closed
    await good.queue_delete(q)


async def test_calls_pipelined_behind_a_refused_one_say_they_were_not_processed(conn: Connection) -> None:
    ch = await conn.channel()
    missing, q = _name("missing"), _name("fine")
    refused, behind = await asyncio.gather(ch.queue_declare(missing, passive=True),
                                           ch.queue_declare(q, auto_delete=True), return_exceptions=True)
    assert isinstance(refused, errors.NotFoundError) and missing in str(refused)
    assert "not processed" not in str(refused)
    assert isinstance(behind, errors.NotFoundError)  # same class and code: the channel is closed
    assert "not processed" in str(behind) and q in str(behind)
    assert refused is ch._closed_exc and behind is not ch._closed_exc


async def test_refused_publish_is_named_in_the_error_not_the_pending_call(conn: Connection) -> None:
    ch = await conn.channel()
    missing = _name("noexchange")
    ch.publish_nowait(b"x", missing, "rk")
    with pytest.raises(errors.NotFoundError) as info:
        await ch.queue_declare(_name("any"), auto_delete=True)
    assert str(info.value).startswith("queue.declare")
    assert "not processed" in str(info.value) and "basic.publish" in str(info.value)
    assert ch._closed_exc is not None and str(ch._closed_exc).startswith("basic.publish")


async def test_406_on_redeclare_with_other_arguments(conn: Connection) -> None:
    ch = await conn.channel()
    q = _name("eq")
    await ch.queue_declare(q, arguments={"x-max-length": 10})
    ch2 = await conn.channel()
    with pytest.raises(errors.PreconditionFailedError) as info:
        await ch2.queue_declare(q, arguments={"x-max-length": 11})
    assert info.value.reply_code == 406
    await ch.queue_delete(q)


async def test_publish_to_missing_exchange_with_confirms_raises_404(conn: Connection) -> None:
    ch = await conn.channel(publisher_confirms=True)
    with pytest.raises(errors.NotFoundError):
        await ch.publish(b"x", _name("noexchange"), "rk", timeout=5)
    other = await conn.channel()
    await other.basic_qos(10)


async def test_confirms_pipelined_and_multiple(conn: Connection) -> None:
    ch = await conn.channel(publisher_confirms=True)
    q = _name("confirm")
    await ch.queue_declare(q)
    futs = [ch.publish_nowait(b"m%d" % i, "", q) for i in range(2000)]
    await ch.wait_for_confirms(timeout=20)
    assert all(f is not None and f.done() and f.result() is True for f in futs)
    assert (await ch.queue_declare(q, passive=True)).message_count == 2000
    assert await ch.queue_purge(q) == 2000
    await ch.queue_delete(q)


async def test_reject_publish_overflow_gives_nack(conn: Connection) -> None:
    ch = await conn.channel(publisher_confirms=True)
    q = _name("nack")
    await ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    await ch.publish(b"first", "", q)
    with pytest.raises(errors.PublishNackedError):
        await ch.publish(b"second", "", q)
    assert ch.is_open
    await ch.queue_delete(q)


async def test_mandatory_unroutable_is_returned(conn: Connection) -> None:
    ch = await conn.channel(publisher_confirms=True)
    returned: list[object] = []
    ch.on_return = returned.append
    with pytest.raises(errors.PublishReturnedError) as info:
        await ch.publish(b"lost", "", _name("nobody"), mandatory=True)
    assert info.value.reply_code == 312
    assert len(returned) == 1 and returned[0].body == b"lost"  # type: ignore[attr-defined]
    plain = await conn.channel()
    got: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    plain.on_return = got.set_result
    plain.publish_nowait(b"lost2", "amq.direct", "nowhere", mandatory=True)
    ret = await asyncio.wait_for(got, 5)
    assert ret.reply_text == "NO_ROUTE" and ret.routing_key == "nowhere"  # type: ignore[attr-defined]


async def test_consume_prefetch_and_coalesced_acks(conn: Connection) -> None:
    ch = await conn.channel()
    q = _name("consume")
    await ch.queue_declare(q)
    n = 3000
    for i in range(n):
        ch.publish_nowait(b"%d" % i, "", q)
    await ch.drain()
    await ch.basic_qos(prefetch_count=100)
    seen: list[int] = []
    done = asyncio.get_running_loop().create_future()

    def on_message(d: object) -> None:
        seen.append(int(d.body))  # type: ignore[attr-defined]
        ch.basic_ack(d.delivery_tag)  # type: ignore[attr-defined]
        if len(seen) == n and not done.done():
            done.set_result(None)

    tag = await ch.basic_consume(q, on_message)
    await asyncio.wait_for(done, 20)
    assert seen == list(range(n))
    await ch.basic_cancel(tag)
    await asyncio.sleep(0.1)
    ok = await ch.queue_declare(q, passive=True)
    assert ok.message_count == 0  # everything acked, nothing left unacked/requeued
    await ch.queue_delete(q)


async def test_prefetch_limits_unacked_and_nack_requeue_sets_redelivered(conn: Connection) -> None:
    ch = await conn.channel()
    q = _name("prefetch")
    await ch.queue_declare(q)
    for i in range(10):
        ch.publish_nowait(b"%d" % i, "", q)
    await ch.basic_qos(prefetch_count=3)
    got: list[object] = []
    await ch.basic_consume(q, got.append)
    await asyncio.sleep(0.5)
    assert len(got) == 3
    first = got[0]
    ch.basic_nack(first.delivery_tag, requeue=True)  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    redelivered = [d for d in got[3:] if d.body == first.body]  # type: ignore[attr-defined]
    assert redelivered and redelivered[0].redelivered  # type: ignore[attr-defined]
    ch.basic_ack(got[-1].delivery_tag, multiple=True)  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    await ch.close()
    ch2 = await conn.channel()
    await ch2.queue_delete(q)


async def test_async_callback_and_broker_initiated_cancel(conn: Connection) -> None:
    ch = await conn.channel()
    q = _name("cancel")
    await ch.queue_declare(q)
    got: list[bytes] = []
    cancelled: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_message(d: object) -> None:
        await asyncio.sleep(0)
        got.append(d.body)  # type: ignore[attr-defined]
        ch.basic_ack(d.delivery_tag)  # type: ignore[attr-defined]

    tag = await ch.basic_consume(q, on_message, on_cancel=cancelled.set_result)
    await ch.publish(b"one", "", q)
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.02)
    assert got == [b"one"]
    other = await conn.channel()
    await other.queue_delete(q)
    assert await asyncio.wait_for(cancelled, 5) == tag
    assert ch.is_open


async def test_large_body_spans_frames(conn: Connection) -> None:
    ch = await conn.channel()
    q = _name("large")
    await ch.queue_declare(q)
    body = bytes(range(256)) * 4000  # 1 MB > frame_max
    await ch.publish(body, "", q)
    msg = None
    for _ in range(100):
        msg = await ch.basic_get(q, no_ack=True)
        if msg is not None:
            break
        await asyncio.sleep(0.02)
    assert msg is not None and msg.body == body
    await ch.queue_delete(q)


async def test_channel_pool_publishes_from_many_coroutines(conn: Connection) -> None:
    q = _name("pool")
    ch = await conn.channel()
    await ch.queue_declare(q)
    async with ChannelPool(conn, size=3, publisher_confirms=True) as pool:
        await asyncio.gather(*(pool.publish(b"%d" % i, "", q) for i in range(600)))
    assert (await ch.queue_declare(q, passive=True)).message_count == 600
    await ch.queue_delete(q)


async def test_exchange_topology_calls(conn: Connection) -> None:
    ch = await conn.channel()
    src, dst, q = _name("src"), _name("dst"), _name("q")
    await ch.exchange_declare(src, "topic", auto_delete=False)
    await ch.exchange_declare(dst, "fanout")
    await ch.exchange_bind(dst, src, "a.*")
    await ch.queue_declare(q)
    await ch.queue_bind(q, dst)
    await ch.publish(b"hit", src, "a.b")
    await ch.publish(b"miss", src, "b.a")
    await asyncio.sleep(0.2)
    assert (await ch.queue_declare(q, passive=True)).message_count == 1
    await ch.queue_unbind(q, dst)
    await ch.exchange_unbind(dst, src, "a.*")
    await ch.exchange_delete(dst)
    await ch.exchange_delete(src)
    await ch.queue_delete(q)


async def test_clean_close_then_calls_raise(conn: Connection) -> None:
    ch = await conn.channel()
    await ch.close()
    with pytest.raises(errors.ChannelClosedError):
        ch.publish_nowait(b"x", "", "q")
    c2 = await connect(URL)
    await c2.close()
    assert c2.is_closed
    with pytest.raises(errors.ConnectionClosedError):
        await c2.channel()


class _Gate:
    """A StreamReader stand-in whose reads wait while ``flowing`` is clear."""

    def __init__(self, reader: asyncio.StreamReader, flowing: asyncio.Event) -> None:
        self.reader, self.flowing = reader, flowing

    async def read(self, n: int) -> bytes:
        await self.flowing.wait()
        return await self.reader.read(n)


class StallingProxy(TcpProxy):
    """A TcpProxy that can stop reading what the client sends (``stall()``/``flow()``), like a broker
    that does not keep up: the client's socket fills and its writes must wait. Small receive buffers
    on the proxy's side keep what the kernel absorbs meanwhile to a few MB."""

    def __init__(self) -> None:
        super().__init__()
        self.flowing = asyncio.Event()
        self.flowing.set()

    def stall(self) -> None:
        self.flowing.clear()

    def flow(self) -> None:
        self.flowing.set()

    async def __aenter__(self) -> StallingProxy:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # accepted sockets inherit it
        sock.bind(("127.0.0.1", 0))
        self.server = await asyncio.start_server(self._handle, sock=sock)
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        towards_broker = writer.get_extra_info("peername")[1] == self.upstream[1]
        await super()._pipe(_Gate(reader, self.flowing) if towards_broker else reader,
                            writer)


async def test_drain_waits_while_the_broker_does_not_read() -> None:
    """Back-pressure where it matters: while the broker side reads nothing, drain() waits (and names
    the cause when its timeout runs out) instead of letting the client buffer without limit; what the
    client holds stays at the transport's high-water mark plus one batch; once the broker reads
    again, drain() returns and every message arrives."""
    batch, body = 1000, b"x" * 2000
    held_max = (4 << 20) + batch * (len(body) + 100)  # high-water mark + the batch that crossed it
    async with StallingProxy() as proxy:
        conn = await connect(proxy.url(), timeout=10)
        try:
            ch = await conn.channel()
            q = _name("drain")
            await ch.queue_declare(q)
            proxy.stall()
            sent = 0
            with pytest.raises(errors.OperationTimeout, match="write buffer"):
                for _ in range(60):  # 120 MB: far beyond what the sockets absorb while stalled
                    for _ in range(batch):
                        ch.publish_nowait(body, "", q)
                    sent += batch
                    await ch.drain(timeout=0.5)
            transport = conn._transport
            assert transport is not None
            held = transport.get_write_buffer_size() + len(conn._wbuf)
            assert held <= held_max, f"the client buffered {held:,} bytes while the broker did not read"
            assert not conn.is_closed and ch.is_open  # a timed-out drain() loses nothing
            proxy.flow()
            await ch.drain(timeout=30)
            count = 0
            for _ in range(300):
                count = (await ch.queue_declare(q, passive=True)).message_count
                if count >= sent:
                    break
                await asyncio.sleep(0.05)
            assert count == sent
            await ch.queue_delete(q)
        finally:
            await conn.close()
