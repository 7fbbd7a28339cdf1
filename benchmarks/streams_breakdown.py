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

``--instructions``: the consume side in instructions per record under callgrind (load-independent;
each piece in a fresh interpreter once with one repetition and once with three, the difference / 2N):
``raw`` (the benchmark's zero-cost raw consumer, ``_streams_raw.RawStream.data_received``, on the same
Deliver frames), ``consumer`` (all of our consume loop: ``StreamConnection`` reading those frames ->
subscription -> ``StreamConsumer`` -> ``dispatch_chunk`` -> handler -> credit), ``dispatch_chunk``,
its steps (``body``, ``envelope``, ``contract``), and two floors for a Python consumer that decodes:
``floor_loads`` (one ``orjson.loads`` of the body + one Python call per record) and ``floor_user``
(what the rbfly row's users do: ``orjson.loads`` + the dataclass + a handler call).
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import struct
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

os.environ.setdefault("BENCH_BODY", "mmate")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _aiopika_mmate as am
import orjson
from _callgrind import callgrind_total
from _mmate_event import new_event

from mmate_fast._ext import load
from mmate_fast.contracts import default_registry, from_envelope
from mmate_fast.contracts._convert import payload_decoder
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


#: the consume pieces of ``--instructions``
PIECES = ("raw", "consumer", "dispatch_chunk", "body", "envelope", "contract", "floor_loads", "floor_user")
#: records per chunk in ``--instructions`` (our publisher's batch; the broker's chunks hold about that)
CHUNK_RECORDS = 500
#: bytes per socket read fed to the readers in ``--instructions``
READ = 256 << 10


def _deliver_frames(records: list[bytes]) -> bytes:
    """Deliver frames (version 1, subscription 0) of ``records`` in chunks of CHUNK_RECORDS."""
    out = []
    for i in range(0, len(records), CHUNK_RECORDS):
        chunk = _chunk(records[i:i + CHUNK_RECORDS], i)
        out.append(struct.pack(">IHHB", 5 + len(chunk), 0x0008, 1, 0) + chunk)
    return b"".join(out)


def _consume_runs(n: int) -> dict[str, Callable[[], Any]]:
    """Each consume piece (PIECES) over n records, set up once (call it in a running loop)."""
    from _mmate_event import OrderCreatedEvent
    from _streams_raw import RawStream

    from mmate_fast.messaging.dispatcher import Dispatcher
    from mmate_fast.messaging.streams import StreamConsumer
    from mmate_fast.transports.streams.connection import StreamConnection
    from mmate_fast.transports.streams.subscription import StreamSubscription

    wire, env = load("streamwire"), load("envelope")
    outs = [build(new_event(i), persistent=False) for i in range(n)]
    records = [wire.encode_message(o.properties, o.body, *ROUTE) for o in outs]
    bodies = [o.body for o in outs]
    envelopes = [env.decode_envelope(b) for b in bodies]
    data = _deliver_frames(records)
    reads = [data[i:i + READ] for i in range(0, len(data), READ)]
    chunks = [_chunk(records[i:i + CHUNK_RECORDS], i) for i in range(0, n, CHUNK_RECORDS)]
    count = [0]

    def handle(evt: Any) -> None:
        count[0] += 1

    dispatcher = Dispatcher()
    dispatcher.add_handler(OrderCreatedEvent, handle)
    lookup = dispatcher.table.lookup
    decoder = functools.partial(payload_decoder, registry=default_registry)

    class Sink:
        def write(self, frame: Any) -> None:
            return None

    raw = RawStream()
    raw.t = Sink()
    raw.target = 1 << 62

    def raw_run() -> None:
        for i in range(0, len(data), READ):
            raw.data_received(data[i:i + READ])  # a fresh bytes per read, as the loop gives it

    conn = StreamConnection(asyncio.get_running_loop(), 10.0)
    conn._transport = Sink()
    consumer = StreamConsumer(conn, "s", dispatcher, offset="first", credit=16)
    sub = StreamSubscription(conn, 0, "s", consumer._on_chunk, 0)
    sub.read_chunk = consumer._read_chunk
    consumer._sub = sub
    conn._subscriptions[0] = sub

    def consumer_run() -> None:
        sub.next_offset = 0
        for part in reads:  # the socket read into the connection's buffer (the copy a read makes)
            view = conn.get_buffer(-1)
            view[:len(part)] = part
            conn.buffer_updated(len(part))
        assert consumer.stats.failed == 0 and not consumer._chunks

    def chunks_run() -> None:
        for c in chunks:
            wire.dispatch_chunk(c, 0, len(c), 0, env.decode_envelope, lookup, from_envelope, default_registry,
                                decoder)

    def body_run() -> None:
        for r in records:
            wire.message_body(r)

    def envelope_run() -> None:
        for b in bodies:
            env.decode_envelope(b)

    def contract_run() -> None:
        for e in envelopes:
            from_envelope(e, default_registry)

    def floor_loads_run() -> None:
        loads = orjson.loads
        for b in bodies:
            handle(loads(b))

    def floor_user_run() -> None:
        from_body = am.from_body
        for b in bodies:
            handle(from_body(b))

    return {"raw": raw_run, "consumer": consumer_run, "dispatch_chunk": chunks_run, "body": body_run,
            "envelope": envelope_run, "contract": contract_run, "floor_loads": floor_loads_run,
            "floor_user": floor_user_run}


async def _child(piece: str, n: int, reps: int) -> None:
    """The measured process: set up once, then run ``piece`` ``reps`` times over n records."""
    run = _consume_runs(n)[piece]
    run()  # warm: plans built, buffers grown
    for _ in range(reps):
        run()


async def _consume_rows(n: int) -> list[tuple[str, float]]:
    """Client CPU per record of the consume pieces that the table's own rows do not show."""
    runs = _consume_runs(n)
    return [
        ("ours consume: the consumer, all of it (reads -> dispatch_chunk -> handler -> credit)",
         per_msg(n, runs["consumer"])),
        ("raw consume: the benchmark's zero-cost reader (per record)", per_msg(n, runs["raw"])),
        ("floor: orjson.loads(body) + one Python call", per_msg(n, runs["floor_loads"])),
    ]


def _instructions(piece: str, n: int, reps: int) -> int:
    return callgrind_total(__file__, "--child", piece, "--messages", str(n), "--reps", str(reps))


def instructions(pieces: list[str], n: int) -> None:
    """Print instructions per record of each consume piece (see the module docstring)."""
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    from mmate_fast._ext import COMPILED

    for name in ("streamwire", "envelope", "payload_reader", "dispatch"):
        load(name)
    print(f"extensions: {'compiled' if all(COMPILED.values()) else 'PURE-PYTHON TWINS'}; "
          f"{n} records per repetition, {CHUNK_RECORDS} per chunk")
    for piece in pieces or PIECES:
        one, three = _instructions(piece, n, 1), _instructions(piece, n, 3)
        print(f"{piece:<16} {(three - one) / (2 * n):>10,.0f} instructions/record", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", "-n", type=int, default=None,
                    help="messages per repetition (default 20,000; 2,000 with --instructions)")
    ap.add_argument("--instructions", nargs="*", metavar="PIECE", default=None,
                    help=f"callgrind instructions per record of consume pieces ({', '.join(PIECES)}; "
                         "default all)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        asyncio.run(_child(a.child, a.messages, a.reps))
        return
    if a.instructions is not None:
        bad = [p for p in a.instructions if p not in PIECES]
        if bad:
            ap.error(f"unknown piece(s) {bad}: use {', '.join(PIECES)}")
        instructions(a.instructions, a.messages or 2_000)
        return
    n = a.messages or 20_000
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

    decoder = functools.partial(payload_decoder, registry=default_registry)

    def chunks_of() -> None:
        for c in chunks:
            wire.dispatch_chunk(c, 0, len(c), 0, env.decode_envelope, table.get, from_envelope,
                                default_registry, decoder)
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
        *asyncio.run(_consume_rows(n)),
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
