"""The clients of ``run.py streams-publish`` / ``streams-consume``, one per process:

    BENCH_BODY=mmate python benchmarks/_streams_clients.py CLIENT WORKLOAD --stream S --messages N

mmate_fast: typed events (a new ``OrderCreatedEvent`` object per message) through the Client:
``client.publish_batch_to_stream`` (envelope + headers built by our encoder, stored as the AMQP path
stores them, batches of 500 with pipelined confirms); consume: ``client.subscribe_stream`` with a
handler registered for the type (the envelope decoded into the typed class per record).
rbfly: bare rbfly as its users would write it: per message the Mmate envelope built as an explicit
dict and ``orjson.dumps`` (the same bytes as ours, _aiopika_mmate.envelope) sent with the Mmate
headers as AMQP application properties, ``PublisherBatchFast.batch`` + ``flush`` per 500; consume:
``async for`` over ``subscribe``, ``orjson.loads`` and the payload read into the dataclass.
raw: _streams_raw.py on pre-encoded frames (our stored message for the same envelope, repeated).
Each prints one JSON line: count, elapsed_s, cpu_s (this process), broker_cpu_s, extensions.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

from _common import AMQP_URL, BODY, PROPS, Span, extensions_in_use, run_loop

BATCH = 500
WINDOW = 20_000
#: chunks in flight per subscription, the same for our consumer and the raw one (a chunk's credit goes
#: back when it is handled, by ours; when it arrives, by raw)
CREDIT = 16
ROUTE = ("mmate.events", "evt.order-42.OrderCreatedEvent")
STREAM_URL = "rabbitmq-stream://guest:guest@127.0.0.1:5552/"


async def mmate_publish(stream: str, n: int) -> dict[str, Any]:
    from _mmate_event import new_event

    from mmate_fast import Client

    async with Client(AMQP_URL, declare_topology=False, publisher_confirms=False) as client:
        await client.stream_publisher(stream, batch_size=BATCH)  # connect + declare, untimed
        span = Span().start()
        ids = await client.publish_batch_to_stream(stream, (new_event(i) for i in range(n)), persistent=False)
        span.stop()
    return {"count": len(ids), **span.fields()}


async def mmate_consume(stream: str, n: int) -> dict[str, Any]:
    from _mmate_event import OrderCreatedEvent

    from mmate_fast import Client

    done = asyncio.get_running_loop().create_future()
    count = [0]

    def handle(evt: OrderCreatedEvent) -> None:
        count[0] += 1
        if count[0] >= n and not done.done():
            done.set_result(None)

    async with Client(AMQP_URL, declare_topology=False, publisher_confirms=False) as client:
        client.dispatcher.add_handler(OrderCreatedEvent, handle)
        await client._stream_side().connection()  # connect, untimed
        span = Span().start()
        consumer = await client.subscribe_stream(stream, offset="first", credit=CREDIT)
        await done
        span.stop()
        await consumer.stop()
    return {"count": count[0], **span.fields()}


async def rbfly_publish(stream: str, n: int) -> dict[str, Any]:
    from _aiopika_mmate import check_same_bytes, envelope, new_event, utc_now
    from rbfly.streams import PublisherBatchFast, stream_message_ctx, streams_client

    check_same_bytes()
    client = streams_client(STREAM_URL)
    async with client.publisher(stream, cls=PublisherBatchFast) as pub:
        span = Span().start()
        for i in range(n):
            evt = new_event(i)
            msg_id = str(uuid.uuid4())
            _, ts = utc_now()
            headers, body = envelope(evt, msg_id, ts)
            pub.batch(stream_message_ctx(body, app_properties=headers))
            if (i + 1) % BATCH == 0:
                await pub.flush()
        await pub.flush()
        span.stop()
    await client.disconnect()
    return {"count": n, **span.fields()}


async def rbfly_consume(stream: str, n: int) -> dict[str, Any]:
    from _aiopika_mmate import from_body
    from rbfly.streams import Offset, streams_client

    client = streams_client(STREAM_URL)
    await client.get_protocol()  # connect, untimed
    count = 0
    handled: list[Any] = []
    handle = handled.append
    span = Span().start()
    async for msg in client.subscribe(stream, offset=Offset.FIRST):
        handle(from_body(msg))
        handled.clear()
        count += 1
        if count >= n:
            break
    span.stop()
    await client.disconnect()
    return {"count": count, **span.fields()}


def _stored_message() -> bytes:
    from mmate_fast._ext import load

    assert PROPS is not None, "run with BENCH_BODY=mmate"
    return bytes(load("streamwire").encode_message(PROPS, BODY, *ROUTE))


async def raw_publish(stream: str, n: int) -> dict[str, Any]:
    from _streams_raw import connect

    message = _stored_message()
    conn = await connect()
    span = Span().start()
    await conn.publish(stream, message, n, BATCH, WINDOW)
    span.stop()
    conn.t.close()
    return {"count": conn.confirmed, **span.fields()}


async def raw_consume(stream: str, n: int) -> dict[str, Any]:
    from _streams_raw import connect

    conn = await connect()
    span = Span().start()
    await conn.consume(stream, n, CREDIT)
    span.stop()
    conn.t.close()
    return {"count": min(conn.records, n), **span.fields()}


RUNNERS = {("mmate_fast", "publish"): mmate_publish, ("mmate_fast", "consume"): mmate_consume,
           ("rbfly", "publish"): rbfly_publish, ("rbfly", "consume"): rbfly_consume,
           ("raw", "publish"): raw_publish, ("raw", "consume"): raw_consume}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("client", choices=["mmate_fast", "rbfly", "raw"])
    ap.add_argument("workload", choices=["publish", "consume"])
    ap.add_argument("--stream", required=True)
    ap.add_argument("--messages", type=int, required=True)
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    a = ap.parse_args()
    t0 = time.time()
    res = run_loop(lambda: RUNNERS[(a.client, a.workload)](a.stream, a.messages), a.loop)
    res.update(client=a.client, workload=a.workload, n=a.messages, wall_s=time.time() - t0,
               body_bytes=len(BODY))
    if res.get("elapsed_s"):
        res["rate"] = res["count"] / res["elapsed_s"]
    if a.client == "mmate_fast":
        res["extensions"] = extensions_in_use()
    sys.stdout.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
