"""Instructions per consumed Mmate event, piece by piece, without the broker (callgrind: load-independent).

    python benchmarks/consume_instructions.py [--messages 1000] [PIECE ...]
    python benchmarks/consume_instructions.py --cpu   (no valgrind: connection piece, µs CPU/event)

Pieces: ``feed`` (FrameReader.feed of deliver + header + body frames of the benchmark event, its
Go header table included), ``envelope`` (decode_envelope of its body), ``payload`` (the contract
decode: the class's plan.decode), ``from_envelope`` (registry lookup + payload decode),
``on_delivery`` (the Subscription's consumer callback — the compiled DeliveryStep, or
``on_delivery`` without the extensions: envelope, dispatch, payload, a plain handler, the ack call on a stub
channel) and ``all`` (feed + on_delivery); ``connection``: the whole client side of a consume, as
the Client's subscription runs it on an AMQP Channel of a Connection whose transport drops what it is
given (``data_received`` in reads of READ_BYTES, the channel's consumer, the acks written once per
loop turn). Each piece runs in a fresh interpreter
under ``valgrind --tool=callgrind`` once with one repetition and once with three; the difference
divided by 2 x messages is printed (startup and set-up cancel out). The children run with
PYTHONHASHSEED=0 unless it is set (else runs differ by ~1.5k instructions per event). Needs valgrind.
"""
from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
from typing import Any

from _callgrind import callgrind_total

HERE = os.path.dirname(os.path.abspath(__file__))
PIECES = ("feed", "envelope", "payload", "from_envelope", "on_delivery", "all", "connection")
#: bytes per data_received call of the ``connection`` piece (a read of ~12 deliveries)
READ_BYTES = 16384


def _child(piece: str, n: int, reps: int) -> None:
    """The measured process: set up once, then run ``piece`` ``reps`` times over n messages."""
    os.environ.setdefault("BENCH_BODY", "mmate")
    sys.path.insert(0, HERE)
    from _mmate_event import OrderCreatedEvent, template
    from pamqp import commands, frame

    from mmate_fast._ext import load
    from mmate_fast.contracts import default_registry, from_envelope
    from mmate_fast.contracts._plan import plan_for
    from mmate_fast.messaging.dispatcher import Dispatcher
    from mmate_fast.messaging.subscriber import Subscriber, Subscription

    frames, envelope = load("frames"), load("envelope")
    if piece == "connection":
        _connection(n, reps)
        return
    body, props = template()

    def deliver(tag: int) -> bytes:
        head = struct.pack(">HHQ", 60, 0, len(body)) + props
        return (frame.marshal(commands.Basic.Deliver("ctag", tag, False, "", "q"), 1)
                + struct.pack(">BHI", 2, 1, len(head)) + head + b"\xce"
                + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce")

    class StubChannel:
        def basic_ack(self, tag: int, multiple: bool = False) -> None:
            return None

    handled = [0]

    def on_order(evt: Any) -> None:
        handled[0] += 1

    dispatcher = Dispatcher()
    dispatcher.add_handler(OrderCreatedEvent, on_order)
    sub = Subscription(Subscriber(None, dispatcher), "q", StubChannel(), concurrency=10, dead_letter=False)
    data = b"".join(deliver(i + 1) for i in range(n))
    reader = frames.FrameReader()
    items = reader.feed(data)
    env = envelope.decode_envelope(body)
    plan = plan_for(OrderCreatedEvent)
    sub._deliver(items[0])
    decode, on_delivery = plan.decode, sub._deliver
    for _ in range(reps):
        if piece == "feed":
            reader.feed(data)
        elif piece == "envelope":
            for _ in range(n):
                envelope.decode_envelope(body)
        elif piece == "payload":
            for _ in range(n):
                decode(env.payload, env.id, env.type, env.timestamp, None)
        elif piece == "from_envelope":
            for _ in range(n):
                from_envelope(env, default_registry)
        elif piece == "on_delivery":
            for item in items:
                on_delivery(item)
        else:
            for item in reader.feed(data):
                on_delivery(item)


def _connection(n: int, reps: int) -> None:
    """The ``connection`` piece: Connection.data_received -> Channel -> the subscription's consumer
    -> acks flushed at the end of each loop turn, on a transport that drops the bytes."""
    import asyncio

    from _mmate_event import OrderCreatedEvent, template
    from pamqp import commands, frame

    from mmate_fast.amqp.channel import Channel, _Consumer
    from mmate_fast.amqp.connection import Connection
    from mmate_fast.amqp.url import ConnectionParameters
    from mmate_fast.messaging.dispatcher import Dispatcher
    from mmate_fast.messaging.subscriber import Subscriber, Subscription

    body, props = template()
    head = struct.pack(">HHQ", 60, 0, len(body)) + props

    def deliver(tag: int) -> bytes:
        return (frame.marshal(commands.Basic.Deliver("ctag", tag, False, "", "q"), 1)
                + struct.pack(">BHI", 2, 1, len(head)) + head + b"\xce"
                + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce")

    class Sink:
        def write(self, data: Any) -> None:
            return None

        def close(self) -> None:
            return None

    async def run() -> None:
        conn = Connection(ConnectionParameters(), asyncio.get_running_loop())
        conn._transport = Sink()  # type: ignore[assignment]
        ch = Channel(conn, 1)
        ch._open = True
        conn._channels[1] = ch
        handled = [0]

        def on_order(evt: Any) -> None:
            handled[0] += 1

        dispatcher = Dispatcher()
        dispatcher.add_handler(OrderCreatedEvent, on_order)
        sub = Subscription(Subscriber(conn, dispatcher), "q", ch, concurrency=10, dead_letter=False)
        ch._add_consumer("ctag", _Consumer("q", sub._deliver, None, False))
        # built up front, as many rounds for every ``reps`` (1 or 3): only the consuming differs
        rounds = [b"".join(deliver(r * n + i + 1) for i in range(n)) for r in range(max(reps, 3) + 1)]
        for data in rounds[:reps + 1]:  # the first round warms up (plans, caches)
            for pos in range(0, len(data), READ_BYTES):
                conn.data_received(data[pos:pos + READ_BYTES])
                await asyncio.sleep(0)  # the loop turn ends: acks are written
        if handled[0] != n * (reps + 1) or sub.stats.acked != n * (reps + 1):
            raise RuntimeError(f"handled {handled[0]}, acked {sub.stats.acked} of {n * (reps + 1)}")

    asyncio.run(run())


def _cpu(n: int = 20_000, rounds: int = 5) -> None:
    """``--cpu``: the ``connection`` piece timed with process_time (what the instruction count
    stands for, in µs; compare builds back to back, the machine's load moves it)."""
    import time

    os.environ.setdefault("BENCH_BODY", "mmate")
    sys.path.insert(0, HERE)

    def run(reps: int) -> float:
        t = time.process_time()
        _connection(n, reps)
        return time.process_time() - t

    run(1)  # imports and first-use builders
    per = sorted((run(3) - run(1)) / (2 * n) * 1e6 for _ in range(rounds))
    print(f"connection     {per[len(per) // 2]:>10.2f} µs CPU/msg (median of {rounds}: "
          f"{', '.join(f'{x:.2f}' for x in per)})")


def _instructions(piece: str, n: int, reps: int) -> int:
    return callgrind_total(__file__, "--child", piece, "--messages", str(n), "--reps", str(reps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pieces", nargs="*", help=f"any of {', '.join(PIECES)} (default: all of them)")
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--cpu", action="store_true",
                    help="no valgrind: the connection piece's process CPU per event in this process "
                         "(20,000 events, 3 repetitions minus 1, median of 5; load-dependent)")
    a = ap.parse_args()
    if a.child:
        _child(a.child, a.messages, a.reps)
        return
    if a.cpu:
        _cpu()
        return
    bad = [p for p in a.pieces if p not in PIECES]
    if bad:
        ap.error(f"unknown piece(s) {bad}: use {', '.join(PIECES)}")
    # str hashes are randomized per process: dict probing then differs between the 1- and the
    # 3-repetition child and the difference swings by ~1.5k instructions per event (connection
    # piece); a fixed seed makes every run repeat exactly (PYTHONHASHSEED set by the caller wins)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    from mmate_fast._ext import COMPILED, load

    for name in ("frames", "envelope", "payload_reader"):
        load(name)
    print(f"extensions: {'compiled' if all(COMPILED.values()) else 'PURE-PYTHON TWINS'}; "
          f"{a.messages} messages per repetition")
    for piece in a.pieces or PIECES:
        one, three = _instructions(piece, a.messages, 1), _instructions(piece, a.messages, 3)
        print(f"{piece:<14} {(three - one) / (2 * a.messages):>10,.0f} instructions/msg")


if __name__ == "__main__":
    main()
