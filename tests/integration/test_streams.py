"""RabbitMQ Streams on the real broker: Mmate envelopes published in confirmed batches (stored exactly
as a queue publish of the same message is stored), consumed from first/last/next/offset/timestamp with
the queue handler API, consumer groups resuming from their server-side offset, bad records skipped,
counted and dead-lettered while the consumer goes on.

Skipped (with the reason) only when nothing answers on the stream port (the ``rabbitmq_stream`` plugin
is off: ``bash ci/broker.sh`` enables it).
"""
from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mmate_fast import Client, errors
from mmate_fast.amqp import connect
from mmate_fast.contracts import Event
from mmate_fast.messaging.dispatcher import Dispatcher
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.pipeline import Interceptor
from mmate_fast.transports.streams import StreamConnection, connect_stream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

AMQP_URL = os.environ.get("MMATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
STREAM_PORT = int(os.environ.get("MMATE_STREAM_PORT", "5552"))


def _stream_port_problem() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", STREAM_PORT), timeout=3):
            return None
    except OSError as exc:
        return f"nothing answers on the stream port 127.0.0.1:{STREAM_PORT} ({exc}): the rabbitmq_stream plugin is off"


@pytest.fixture(autouse=True)
def _needs_stream_port() -> None:
    problem = _stream_port_problem()
    if problem is not None:
        pytest.skip(problem)


@dataclass
class StreamOrderPlaced(Event):
    order_id: str = ""
    amount: float = 0.0


@dataclass
class StreamOrderShipped(Event):
    order_id: str = ""


def _name(what: str) -> str:
    return f"wt5-streams-{what}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def sconn() -> Any:
    conn = await connect_stream(AMQP_URL)
    yield conn
    await conn.close()


@pytest.fixture
async def stream(sconn: StreamConnection) -> Any:
    name = _name("s")
    await sconn.create_stream(name, {"max-length-bytes": 50_000_000})
    yield name
    await sconn.delete_stream(name)


def _events(n: int, start: int = 0) -> list[StreamOrderPlaced]:
    return [StreamOrderPlaced(order_id=f"o-{i}", amount=float(i), aggregate_id=f"o-{i}") for i in range(start, start + n)]


async def _records(conn: StreamConnection, stream: str, count: int, offset: Any = "first") -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    done = asyncio.get_running_loop().create_future()

    def on_chunk(sub: Any, first: int, ts: int, records: list[bytes]) -> None:
        got.extend((first + i, r) for i, r in enumerate(records))
        sub.release()
        if len(got) >= count and not done.done():
            done.set_result(None)

    sub = await conn.subscribe(stream, on_chunk, offset=offset)
    await asyncio.wait_for(done, 10)
    await sub.close()
    return got


async def test_stream_publish_stores_what_a_queue_publish_into_the_stream_stores(
        sconn: StreamConnection, stream: str) -> None:
    """The same message published through our AMQP path into the stream (as a queue) and through the
    stream protocol is stored byte for byte the same: same envelope, headers, properties."""
    evt = StreamOrderPlaced(order_id="o-1", amount=9.5, aggregate_id="o-1", correlation_id="c-1")
    out = build(evt, ttl_ms=60000, priority=2)
    amqp = await connect(AMQP_URL)
    try:
        ch = await amqp.channel()
        await ch.confirm_select()
        await ch.publish(out.body, "", stream, out.properties)
    finally:
        await amqp.close()
    producer = await sconn.producer(stream)
    producer.append(out.properties, out.body, "", stream)
    await producer.flush()
    await producer.close()
    (o1, via_queue), (o2, via_stream) = await _records(sconn, stream, 2)
    assert (o1, o2) == (0, 1)
    assert via_stream == via_queue


async def test_amqp_consumer_of_the_stream_reads_the_mmate_message(stream: str) -> None:
    """A plain AMQP 0-9-1 consumer of the stream (x-stream-offset) gets the envelope body, the Mmate
    headers and the properties a queue consumer would get."""
    async with Client(AMQP_URL, service_name=_name("svc")) as client:
        evt = StreamOrderPlaced(order_id="o-7", amount=1.25, aggregate_id="o-7")
        mid = await client.publish_to_stream(stream, evt)
    expected = build(StreamOrderPlaced(order_id="o-7", amount=1.25, aggregate_id="o-7", id=mid))
    amqp = await connect(AMQP_URL)
    try:
        ch = await amqp.channel()
        await ch.basic_qos(10)
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await ch.basic_consume(stream, lambda d: got.done() or got.set_result(d),
                               arguments={"x-stream-offset": "first"})
        d = await asyncio.wait_for(got, 10)
    finally:
        await amqp.close()
    assert d.properties.message_id == mid
    assert d.properties.type == "StreamOrderPlaced"
    assert d.properties.content_type == "application/json"
    assert d.properties.headers["x-message-type"] == "StreamOrderPlaced"
    assert d.properties.headers["x-aggregate-id"] == "o-7"
    assert d.routing_key == "evt.o-7.StreamOrderPlaced" and d.exchange == "mmate.events"
    assert len(d.body) == len(expected.body) and b'"orderId":"o-7"' in d.body


async def test_consume_from_first_offset_next_last_and_timestamp(stream: str) -> None:
    async with Client(AMQP_URL, service_name=_name("svc")) as client:
        seen: dict[str, list[str]] = {"first": [], "abs": [], "next": [], "ts": [], "last": []}
        before = datetime.now(UTC) - timedelta(seconds=5)
        await client.publish_batch_to_stream(stream, _events(10))

        current = ["first"]
        client.dispatcher.add_handler(StreamOrderPlaced, lambda m: seen[current[0]].append(m.order_id))
        for key, offset in (("first", "first"), ("abs", 6), ("ts", before), ("last", "last")):
            current[0] = key
            consumer = await client.subscribe_stream(stream, offset=offset)
            await consumer.wait_for(9)
            await consumer.stop()
        current[0] = "next"
        nxt = await client.subscribe_stream(stream, offset="next")
        await client.publish_batch_to_stream(stream, _events(2, start=10))
        await nxt.wait_for(11)
        await nxt.stop()
    assert seen["first"] == [f"o-{i}" for i in range(10)]
    assert seen["abs"] == [f"o-{i}" for i in range(6, 10)]
    assert seen["ts"] == [f"o-{i}" for i in range(10)]
    assert seen["last"] and seen["last"][-1] == "o-9"  # the last chunk: a batch, from its first record
    assert seen["next"] == ["o-10", "o-11"]


async def _until(cond: Any, what: str, timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not cond():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


async def test_group_resumes_after_restart_and_groups_keep_their_own_offsets(stream: str) -> None:
    """A group is an offset reference on the broker: a restarted consumer goes on after the last
    offset its group stored (each record once), another group reads the whole log on its own.
    (Stored offsets are written into the stream as tracking chunks, which take offsets too: offsets
    of records are not dense, so the test counts records.)"""
    svc = _name("svc")
    billing: list[str] = []
    async with Client(AMQP_URL, service_name=svc) as client:
        client.dispatcher.add_handler(StreamOrderPlaced, lambda m: billing.append(m.order_id))
        await client.publish_batch_to_stream(stream, _events(5))
        consumer = await client.subscribe_stream(stream, group="billing", offset="first")
        await consumer.wait_for(4)
        first_run_last = consumer.last_offset
    assert billing == [f"o-{i}" for i in range(5)]  # closing the client stored the group's offset

    shipping: list[str] = []
    async with Client(AMQP_URL, service_name=svc) as client:
        await client.publish_batch_to_stream(stream, _events(3, start=5))
        client.dispatcher.add_handler(StreamOrderPlaced, lambda m: billing.append(m.order_id))
        again = await client.subscribe_stream(stream, group="billing", offset="first")
        assert again.started_at == first_run_last + 1  # after the stored offset, not "first"
        await _until(lambda: len(billing) == 8, "billing caught up")
        own = Dispatcher()  # another group in the same process, with handlers of its own
        own.add_handler(StreamOrderPlaced, lambda m: shipping.append(m.order_id))
        ship = await client.subscribe_stream(stream, group="shipping", offset="first", dispatcher=own)
        await _until(lambda: len(shipping) == 8, "shipping caught up")
        await ship.stop()
        shipping_last = ship.last_offset
        billing_last = again.last_offset
    assert billing == [f"o-{i}" for i in range(8)]  # each record once, across the restart
    assert shipping == [f"o-{i}" for i in range(8)]  # another group: its own offset, all of the log
    conn = await connect_stream(AMQP_URL)
    try:
        assert await conn.query_offset("billing", stream) == billing_last
        assert await conn.query_offset("shipping", stream) == shipping_last
        assert await conn.query_offset("nobody", stream) is None
    finally:
        await conn.close()


async def test_bad_records_are_skipped_counted_and_dead_lettered(sconn: StreamConnection, stream: str) -> None:
    group = "audit"
    handled: list[str] = []

    def handle(m: StreamOrderPlaced) -> None:
        if m.order_id == "boom":
            raise RuntimeError("handler failed on purpose")
        handled.append(m.order_id)

    producer = await sconn.producer(stream)
    good = build(StreamOrderPlaced(order_id="ok-1", aggregate_id="a"))
    producer.append_message(b"this is not an AMQP 1.0 message")  # a foreign writer's bytes
    producer.append(good.properties, b'{"not": "an envelope"', "", "")  # AMQP, but no envelope
    boom = build(StreamOrderPlaced(order_id="boom", aggregate_id="a"))
    producer.append(boom.properties, boom.body, "", "")
    producer.append(good.properties, good.body, "", "")
    other = build(StreamOrderShipped(order_id="x", aggregate_id="a"))  # a type this group does not handle
    producer.append(other.properties, other.body, "", "")
    await producer.flush()
    await producer.close()

    dlq = f"dlq.{stream}.{group}"
    async with Client(AMQP_URL, service_name=_name("svc")) as client:
        client.dispatcher.add_handler(StreamOrderPlaced, handle)
        consumer = await client.subscribe_stream(stream, group=group, offset="first")
        await consumer.wait_for(4)
        await _until(lambda: consumer.stats.dead_lettered == 3, "3 records dead-lettered", timeout=30)
        stats = consumer.stats
        assert handled == ["ok-1"]
        assert stats.received == 5 and stats.handled == 1 and stats.ignored == 1 and stats.failed == 3
        assert dict(stats.reasons) == {"not-amqp": 1, "not-json": 1, "handler-error": 1}
        assert stats.dead_lettered == 3
        ch = await client.connection.channel()
        reasons = {}
        for _ in range(3):
            d = await ch.basic_get(dlq, no_ack=True)
            assert d is not None
            reasons[d.properties.headers["x-mmate-reason"]] = (d.properties.headers["x-mmate-stream-offset"], d.body)
        assert await ch.basic_get(dlq, no_ack=True) is None
        await ch.queue_delete(dlq)
    assert reasons["not-amqp"] == (0, b"this is not an AMQP 1.0 message")
    assert reasons["handler-error"][0] == 2 and b'"orderId":"boom"' in reasons["handler-error"][1]
    assert reasons["not-json"] == (1, b'{"not": "an envelope"')


async def test_handler_context_async_handlers_and_interceptors(stream: str) -> None:
    calls: list[Any] = []

    class Around(Interceptor):
        async def around_handler(self, ctx: Any, call_next: Any) -> Any:
            calls.append(("around", ctx.queue, ctx.delivery.offset))
            return await call_next()

    async with Client(AMQP_URL, service_name=_name("svc"), interceptors=[Around()]) as client:
        @client.handler(StreamOrderPlaced)
        async def on_placed(m: StreamOrderPlaced, ctx: Any) -> None:
            calls.append((m.order_id, ctx.headers["x-message-type"], ctx.delivery.offset, ctx.message_id,
                          ctx.correlation_id))

        mid = await client.publish_to_stream(stream, StreamOrderPlaced(order_id="o-1", aggregate_id="o-1"),
                                             correlation_id="corr-9")
        consumer = await client.subscribe_stream(stream, offset="first")
        await consumer.wait_for(0)
    assert calls == [("around", stream, 0), ("o-1", "StreamOrderPlaced", 0, mid, "corr-9")]


async def test_publish_nowait_pipelines_batches_with_confirms(stream: str) -> None:
    async with Client(AMQP_URL, service_name=_name("svc")) as client:
        pub = await client.stream_publisher(stream, batch_size=100)
        ids = [pub.publish_nowait(e) for e in _events(1050)]
        await pub.flush()
        assert pub.producer.confirmed == 1050 and pub.producer.in_flight == 0
        got = await _records(await client._streams.connection(), stream, 1050)
    assert len(set(ids)) == 1050 and [o for o, _ in got] == list(range(1050))


async def test_named_errors_for_missing_stream_and_port(sconn: StreamConnection) -> None:
    missing = _name("missing")
    with pytest.raises(errors.StreamNotFoundError):
        await sconn.producer(missing)
    with pytest.raises(errors.StreamNotFoundError):
        await sconn.subscribe(missing, lambda *a: None)
    assert not await sconn.stream_exists(missing)
    with pytest.raises(errors.StreamConnectionError, match="rabbitmq_stream"):
        await connect_stream("rabbitmq-stream://guest:guest@127.0.0.1:1/", timeout=2)
    with pytest.raises(errors.StreamConnectionError):
        await connect_stream("rabbitmq-stream://guest:wrong@127.0.0.1:5552/")
    # the connection that saw the refusals still works
    name = _name("after")
    assert await sconn.create_stream(name)
    assert await sconn.delete_stream(name)


async def test_stream_deleted_under_a_publisher_fails_its_batch_by_name(sconn: StreamConnection) -> None:
    name = _name("gone")
    await sconn.create_stream(name)
    producer = await sconn.producer(name)
    out = build(StreamOrderPlaced(order_id="o", aggregate_id="o"))
    producer.append(out.properties, out.body, "", "")
    await producer.flush()
    await sconn.delete_stream(name)
    await asyncio.sleep(0.2)
    producer.append(out.properties, out.body, "", "")
    with pytest.raises(errors.StreamPublishError) as info:
        await producer.flush(timeout=3)
    assert info.value.code == 0x12  # publisher does not exist: the broker dropped it with its stream


def test_the_documented_pipeline_runs() -> None:
    """The README's "Streams" example is examples/streams_pipeline.py, and it runs (on a stream and
    services of its own here)."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[2]
    doc = (root / "README.md").read_text()
    doc = doc[doc.index("\n## Streams\n"):]
    code = doc[doc.index("```python\n") + 10:]
    code = code[:code.index("```\n")]
    script = (root / "examples/streams_pipeline.py").read_text()
    assert script.endswith(code)
    tag = uuid.uuid4().hex[:8]
    for word in ("orders", "shop", "billing", "shipping"):
        code = code.replace(f'"{word}"', f'"wt5-streams-{word}-{tag}"')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                             check=False)
        assert out.returncode == 0, out.stderr[-2000:]
        # (its print labels were renamed with the rest)
        assert out.stdout.startswith(f"wt5-streams-billing-{tag} 100 wt5-streams-shipping-{tag} 100"), out.stdout
    finally:
        async def cleanup() -> None:
            conn = await connect(AMQP_URL)
            ch = await conn.channel()
            for svc in ("shop", "billing", "shipping"):
                await ch.queue_delete(f"wt5-streams-{svc}-{tag}-queue")
            await conn.close()

        asyncio.run(cleanup())


async def test_consumer_resubscribes_after_its_connection_is_cut(stream: str) -> None:
    """The link to the stream port is cut mid-log: the consumer opens a new connection and goes on after
    the last record it processed: every record once, in order; records published later arrive too."""
    from tests.integration.tcp_proxy import TcpProxy

    seen: list[str] = []
    async with TcpProxy(STREAM_PORT) as proxy, Client(AMQP_URL, service_name=_name("svc")) as client:
        client.stream_url = f"rabbitmq-stream://guest:guest@127.0.0.1:{proxy.port}/"

        def handle(m: StreamOrderPlaced) -> None:
            seen.append(m.order_id)
            if m.order_id == "o-120":
                assert proxy.cut() >= 1

        client.dispatcher.add_handler(StreamOrderPlaced, handle)
        for start in range(0, 300, 50):  # six chunks: the consumer (credit 1) holds one at a time
            await client.publish_batch_to_stream(stream, _events(50, start=start))
        consumer = await client.subscribe_stream(stream, group="resume", offset="first", credit=1)
        await _until(lambda: len(seen) >= 300, "caught up after the cut")
        await client.publish_batch_to_stream(stream, _events(5, start=300))
        await _until(lambda: len(seen) >= 305, "new records after the cut")
        assert consumer.stats.restarts >= 1
    assert seen == [f"o-{i}" for i in range(305)]


async def test_publish_interceptors_and_queue_publish_options(stream: str) -> None:
    """Stream publishes run the client's publish interceptors and take a queue publish's options
    (``ttl`` in seconds, ``headers``, ``correlation_id``): what the consumer's context shows."""
    published: list[Any] = []

    class Stamp(Interceptor):
        async def before_publish(self, ctx: Any) -> bool | None:
            ctx.headers["x-stamped-by"] = "wt5"
            return None

        async def after_publish(self, ctx: Any, error: BaseException | None) -> None:
            published.append((ctx.outgoing.message_id, error))

    got: list[Any] = []
    async with Client(AMQP_URL, service_name=_name("svc"), interceptors=[Stamp()]) as client:
        @client.handler(StreamOrderPlaced)
        def on_placed(m: StreamOrderPlaced, ctx: Any) -> None:
            props = ctx.delivery.properties
            got.append((ctx.message_id, ctx.headers["x-stamped-by"], ctx.headers.get("team"), props.expiration,
                        ctx.correlation_id))

        mid = await client.publish_to_stream(stream, StreamOrderPlaced(order_id="o", aggregate_id="o"), ttl=60,
                                             headers={"team": "blue"}, correlation_id="c-7")
        ids = await client.publish_batch_to_stream(stream, _events(3))
        pub = await client.stream_publisher(stream)
        with pytest.raises(errors.MmateError, match="interceptors"):
            pub.publish_nowait(StreamOrderPlaced(order_id="x"))
        consumer = await client.subscribe_stream(stream, offset="first")
        await _until(lambda: len(got) == 4, "all handled")
        await consumer.stop()
    assert [p[0] for p in published] == [mid, *ids] and all(e is None for _, e in published)
    assert got[0] == (mid, "wt5", "blue", "60000", "c-7")
    assert [g[1] for g in got] == ["wt5"] * 4


async def test_consumer_of_a_deleted_stream_ends_with_a_named_error(sconn: StreamConnection) -> None:
    name = _name("deleted")
    await sconn.create_stream(name)
    async with Client(AMQP_URL, service_name=_name("svc")) as client:
        client.dispatcher.add_handler(StreamOrderPlaced, lambda m: None)
        consumer = await client.subscribe_stream(name, group="g", offset="first")
        await sconn.delete_stream(name)
        await _until(lambda: consumer.error is not None, "the consumer ended")
        assert isinstance(consumer.error, errors.StreamNotFoundError)
        assert consumer._worker is not None
        await asyncio.wait_for(consumer._worker, 5)  # ended, not retrying
        await consumer.stop()


async def test_named_publisher_goes_on_after_its_last_id_and_the_broker_drops_repeats(
        sconn: StreamConnection, stream: str) -> None:
    out = build(StreamOrderPlaced(order_id="o", aggregate_id="o"))
    producer = await sconn.producer(stream, reference="wt5-dedup")
    assert producer.next_id == 1
    for _ in range(3):
        producer.append(out.properties, out.body, "", "")
    await producer.flush()
    await producer.close()
    again = await sconn.producer(stream, reference="wt5-dedup")
    assert again.next_id == 4  # after the last id the broker stored for this reference
    again.next_id = 2  # a producer that resends ids 2 and 3 (e.g. after a crash): dropped by the broker
    again.append(out.properties, out.body, "", "")
    again.append(out.properties, out.body, "", "")
    again.append(out.properties, out.body, "", "")  # id 4: new
    await again.flush()
    await again.close()
    records = await _records(sconn, stream, 4, offset="first")
    assert len(records) == 4
    assert await sconn.query_publisher_sequence("wt5-dedup", stream) == 4


async def test_streams_need_rabbitmq() -> None:
    async with Client("memory://", service_name=_name("svc")) as client:
        with pytest.raises(errors.StreamError, match="need RabbitMQ"):
            await client.create_stream("anything")


async def test_a_message_that_cannot_be_sent_stops_a_batch_after_sending_the_ones_before(stream: str) -> None:
    async with Client(AMQP_URL, service_name=_name("svc")) as client:
        bad = StreamOrderPlaced(order_id="x", aggregate_id="x")
        bad.id = "i" * 300  # longer than an AMQP short string: refused before anything is sent
        with pytest.raises(errors.InvalidArgumentError) as info:
            await client.publish_batch_to_stream(stream, [*_events(3), bad, *_events(2, start=3)])
        assert "the 3 messages before this one were sent" in "".join(getattr(info.value, "__notes__", []))
        pub = await client.stream_publisher(stream)
        await pub.flush()
        got = await _records(await client._stream_side().connection(), stream, 3)
    assert len(got) == 3


async def test_records_handled_as_chunks_arrive_keep_their_order_and_failures(stream: str) -> None:
    """The consumer's compiled pass over arriving chunks (plain handlers) and its worker (async
    handlers, failures) share one order; a failing plain handler is counted and dead-lettered."""
    order: list[str] = []

    def placed(m: StreamOrderPlaced) -> None:
        if m.order_id == "boom":
            raise RuntimeError("handler failed on purpose")
        order.append(m.order_id)

    async def shipped(m: StreamOrderShipped) -> None:
        await asyncio.sleep(0)
        order.append("shipped-" + m.order_id)

    names = ["p-0", "p-1", "boom", "p-2", "s-0", "p-3", "boom", "p-4", "s-1", "p-5"]
    msgs = [StreamOrderShipped(order_id=n[2:], aggregate_id="a") if n.startswith("s-")
            else StreamOrderPlaced(order_id=n, aggregate_id="a") for n in names]
    group = "order"
    async with Client(AMQP_URL, service_name=_name("svc")) as client:
        await client.publish_batch_to_stream(stream, msgs * 30)
        client.dispatcher.add_handler(StreamOrderPlaced, placed)
        client.dispatcher.add_handler(StreamOrderShipped, shipped)
        consumer = await client.subscribe_stream(stream, group=group, offset="first")
        await consumer.wait_for(len(msgs) * 30 - 1)
        await _until(lambda: consumer.stats.dead_lettered == 60, "60 records dead-lettered", timeout=30)
        stats = consumer.stats
        assert stats.received == 300 and stats.handled == 240 and stats.failed == 60
        assert dict(stats.reasons) == {"handler-error": 60}
        await consumer.stop()
        assert await (await client._stream_side().connection()).query_offset(group, stream) == 299
        ch = await client.connection.channel()
        await ch.queue_delete(f"dlq.{stream}.{group}")
    expected = [n if n.startswith("p-") else "shipped-" + n[2:] for n in names if n != "boom"]
    assert order == expected * 30


async def test_sub_entry_batches_reach_our_consumer_and_amqp_consumers_record_by_record(stream: str) -> None:
    msgs = _events(1200)
    async with Client(AMQP_URL, service_name=_name("svc")) as client:
        pub = await client.stream_publisher(stream, sub_entries=True)
        assert pub.producer.sub_entries
        ids = await client.publish_batch_to_stream(stream, msgs)
        assert pub.producer.confirmed == 1200 and pub.producer.in_flight == 0
        got: list[tuple[str, str]] = []
        client.dispatcher.add_handler(StreamOrderPlaced, lambda m: got.append((m.id, m.order_id)))
        consumer = await client.subscribe_stream(stream, offset="first")
        await consumer.wait_for(1199)
        await consumer.stop()
    assert got == [(i, m.order_id) for i, m in zip(ids, msgs, strict=True)]
    amqp = await connect(AMQP_URL)
    try:
        ch = await amqp.channel()
        await ch.basic_qos(2000)
        seen: list[Any] = []
        await ch.basic_consume(stream, seen.append, arguments={"x-stream-offset": "first"})
        await _until(lambda: len(seen) >= 1200, "1200 records over AMQP 0-9-1")
    finally:
        await amqp.close()
    assert [d.properties.message_id for d in seen] == ids
    assert seen[5].properties.headers["x-aggregate-id"] == "o-5"
