"""Where a stream message's client CPU goes, stage by stage, ours and bare rbfly's, in one process
(same machine load for every row): ``python benchmarks/streams_breakdown.py [--messages N]``.

Ours, publishing: the typed event (the user's), the messaging core's build (envelope, headers,
properties: what a queue publish costs too), the stream layer (AMQP 0-9-1 -> 1.0 transcoding into the
Publish frame, compiled), and all of ``publish_many``'s compiled loop (``TypedAppender.fill``: the
class's publish plan + the frame). Consuming: the stream layer (the record's data section), the core's
envelope decode and contract decode, and all of the consumer's compiled pass over a chunk
(``dispatch_chunk``: body, envelope, contract decode, handler call). rbfly, as its users write it:
uuid4 + the envelope dict + orjson, then rbfly's AMQP 1.0 encoding of body + application properties
(its ``encode_publish``); consuming: ``orjson.loads`` + the dataclass. No broker needed (rbfly's
encoder runs without a connection).
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

os.environ.setdefault("BENCH_BODY", "mmate")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _aiopika_mmate as am
from _mmate_event import new_event

from mmate_fast._ext import load
from mmate_fast.contracts import default_registry, from_envelope
from mmate_fast.messaging.dispatcher import HandlerSpec
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.publisher import Publisher

ROUTE = ("mmate.events", "evt.order-42.OrderCreatedEvent")
_CHUNK_HEAD = struct.Struct(">bbHIqQQiIII")


def _chunk(records: list[bytes], first: int) -> bytes:
    """An osiris chunk of ``records`` as a Deliver frame carries it (after the subscription id)."""
    data = b"".join(struct.pack(">I", len(r)) + r for r in records)
    return _CHUNK_HEAD.pack(0x50, 0, len(records), len(records), 0, 0, first, 0, len(data), 0, 0) + data


def per_msg(n: int, fn: Callable[[], Any]) -> float:
    """Client CPU µs per message of ``fn`` (which handles n messages), best of 3."""
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", "-n", type=int, default=20_000)
    n = ap.parse_args().messages
    wire, env = load("streamwire"), load("envelope")
    events = [new_event(i) for i in range(n)]
    outs = [build(e, persistent=False) for e in events]
    records = [wire.encode_message(o.properties, o.body, *ROUTE) for o in outs]
    bodies = [o.body for o in outs]
    envelopes = [env.decode_envelope(b) for b in bodies]

    def frames() -> None:
        buf = bytearray(13)
        for i, o in enumerate(outs):
            wire.append_message(buf, i, o.properties, o.body, *ROUTE)
            if i % 500 == 499:
                buf = bytearray(13)

    def builds() -> None:
        for e in events:
            build(e, persistent=False)

    def bodies_of() -> None:
        for r in records:
            wire.message_body(r)

    def envelopes_of() -> None:
        for b in bodies:
            env.decode_envelope(b)

    def messages_of() -> None:
        for e in envelopes:
            from_envelope(e, default_registry)

    core = Publisher(None)

    def fallback(msg: Any) -> tuple[str, str, bytes, bytes, Any]:
        ex, rk, out = core.prepare(msg, persistent=False)
        return ex, rk, out.properties, out.body, out.message_id

    appender = wire.TypedAppender(fallback)
    appender.add_plan(type(events[0]), core._new_plan((type(events[0]), None, None, None, False, False),
                                                      events[0]))

    def filled() -> None:
        it = iter(events)
        done = False
        while not done:
            _, done, _ = appender.fill(bytearray(13), 1, it, 500, 1 << 20, 0, [])

    chunks = [_chunk(records[i:i + 500], i) for i in range(0, n, 500)]
    handled: list[Any] = []
    spec = HandlerSpec(handled.append)
    table = {events[0].__class__.__name__: (spec,)}

    def chunks_of() -> None:
        for c in chunks:
            wire.dispatch_chunk(c, 0, len(c), 0, env.decode_envelope, table.get, from_envelope,
                                default_registry)
            handled.clear()

    rows = [
        ("ours publish: new event object (user)", per_msg(n, lambda: [new_event(i) for i in range(n)])),
        ("ours publish: build (messaging core)", per_msg(n, builds)),
        ("ours publish: stream frame (compiled)", per_msg(n, frames)),
        ("ours publish: publish_many's loop (compiled, all of it)", per_msg(n, filled)),
        ("ours consume: record body (compiled)", per_msg(n, bodies_of)),
        ("ours consume: decode_envelope (core)", per_msg(n, envelopes_of)),
        ("ours consume: contract decode (core)", per_msg(n, messages_of)),
        ("ours consume: dispatch_chunk (compiled, all of it)", per_msg(n, chunks_of)),
    ]
    try:
        from rbfly.streams import stream_message_ctx
        from rbfly.streams.codec import FrameEncoder
    except ImportError:
        print("(rbfly not installed: pip install rbfly; its rows are left out)", file=sys.stderr)
    else:
        plain = [am.new_event(i) for i in range(n)]
        from_body = am.from_body

        def user_build() -> None:
            for e in plain:
                am.envelope(e, str(uuid.uuid4()), am.utc_now()[1])

        ctxs = []
        for i, e in enumerate(plain):
            headers, body = am.envelope(e, str(uuid.uuid4()), am.utc_now()[1])
            ctx = stream_message_ctx(body, app_properties=headers, publish_id=i + 1)
            ctxs.append(ctx)
        encoder = FrameEncoder(1 << 20)

        def rbfly_encode() -> None:
            for i in range(0, n, 500):
                encoder.encode_publish(0, 1, *ctxs[i:i + 500], filter_extract=None, amqp=True)

        rows += [
            ("rbfly publish: uuid4 + dict + orjson (user)", per_msg(n, user_build)),
            ("rbfly publish: encode_publish (AMQP 1.0)", per_msg(n, rbfly_encode)),
            ("rbfly consume: orjson.loads + dataclass (user)", per_msg(n, lambda: [*map(from_body, bodies)])),
        ]
    width = max(len(r[0]) for r in rows)
    print(f"client CPU per message, best of 3 x {n:,} (load average {os.getloadavg()[0]:.1f})")
    for name, us in rows:
        print(f"{name:<{width}}  {us:6.2f} µs")


if __name__ == "__main__":
    main()
