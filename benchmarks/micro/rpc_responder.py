"""Micro-benchmark of the responder side of the rpc workload in this process, without a broker: the
frames of N requests as our requester sends them (the bench query, Go's header table, transient) are
read by the AMQP frame reader and handed to a Client's subscription as a real AMQP Channel runs its
consumer (the subscription's callback registered as ``basic_consume`` does: the compiled
``DeliveryStep`` as a frame-reader hook, else ``on_delivery`` through ``Channel._on_frame``):
envelope, dispatch, payload, the plain handler returning the ``OrderReply``, the Client's result hook
publishing the reply through its reply publisher into a real ``wire.PublishSink`` of a fake
connection, the ack (the channel's coalesced acks). What is not timed: the socket, the loop, the flush.
Prints CPU µs per request (``time.process_time``, median of ``--rounds``), or with ``--callgrind``
instructions per request (valgrind: 1 and 3 rounds, the difference / 2 x requests; load-independent).

    python benchmarks/micro/rpc_responder.py [--requests 20000] [--rounds 5] [--lean] [--callgrind]
"""
from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # _rpc_types

from _callgrind import callgrind_total
from _rpc_types import REPLY_QUEUE_LIKE, GetOrderQuery, new_query, reply_for

from mmate_fast._ext import load
from mmate_fast.amqp.channel import Channel, _Consumer
from mmate_fast.client import Client
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.publisher import Publisher
from mmate_fast.messaging.subscriber import Subscriber, Subscription

_frames = load("frames")
_wire = load("wire")


class _Conn:
    """The Connection attributes a PublishSink reads (the buffer is dropped after each round)."""

    def __init__(self) -> None:
        self._wbuf = bytearray()
        self._flush_pending = False

    def _schedule_flush(self) -> None:
        self._flush_pending = True


class _ReplyTarget:
    """The reply publisher's target: a channel with a publish sink."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn
        self._sink = _wire.PublishSink(conn, 2, 131072)

    def publish_sink(self) -> Any:
        return self._sink

    def publish_nowait(self, body: bytes, exchange: str, routing_key: str, properties: bytes, *,
                       mandatory: bool = False, confirm_value: Any = True) -> None:
        """What a Channel does with a publish that did not take the sink (e.g. an older publisher)."""
        _frames.append_publish(self._conn._wbuf, 2, exchange, routing_key, body, properties, mandatory, 131072)


class _Wire:
    """The Connection attributes an AMQP Channel reads on the consume side (its frame reader, the
    write buffer its acks go to)."""

    def __init__(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self._reader = _frames.FrameReader()
        self._wbuf = bytearray()
        self._flush_pending = False

    def _schedule_flush(self) -> None:
        self._flush_pending = True


class _StubChannel:
    def basic_ack(self, tag: int, multiple: bool = False) -> None:
        return None


def _request_frames(n: int, lean: bool) -> bytes:
    """deliver + content header + body of n requests (distinct ids and correlation ids)."""
    from pamqp import commands, frame

    parts = []
    for i in range(n):
        q = new_query(i)
        q.reply_to = REPLY_QUEUE_LIKE
        out = build(q, correlation_id=f"{i:036d}", reply_to=REPLY_QUEUE_LIKE, persistent=False)
        props = bytes(out.properties)
        if lean:
            from mmate_fast.messaging._lean import lean_properties
            props = bytes(lean_properties(False, None, None))
        head = struct.pack(">HHQ", 60, 0, len(out.body)) + props
        parts.append(frame.marshal(commands.Basic.Deliver("ctag", i + 1, False, "mmate.queries",
                                                          "qry.RpcBenchGetOrderQuery"), 1)
                     + struct.pack(">BHI", 2, 1, len(head)) + head + b"\xce"
                     + struct.pack(">BHI", 3, 1, len(out.body)) + out.body + b"\xce")
    return b"".join(parts)


def run(requests: int, rounds: int, lean: bool) -> list[float]:
    conn = _Conn()
    client = Client(service_name="bench-rpc-micro", wire_profile="lean" if lean else "go")
    client._reply_publisher = Publisher(_ReplyTarget(conn), confirms=False,
                                        wire_profile="lean" if lean else "go")
    client.add_handler(GetOrderQuery, reply_for, bind=False)
    sub = Subscription(Subscriber(None, client.dispatcher, services=client,
                                  result_hook=client._result_hook() if hasattr(client, "_result_hook")
                                  else client._on_handler_result),  # the hook a Client installs
                       "bench-rpc-micro-queue", _StubChannel(), concurrency=10, dead_letter=False)
    data = _request_frames(requests, lean)
    wire = _Wire()
    ch = Channel(wire, 1)  # the subscription's consumer as basic_consume registers it (a reader hook
    ch._open = True        # when the callback is the compiled step), its items to _on_frame
    ch._add_consumer("ctag", _Consumer("bench-rpc-micro-queue", sub._deliver, None, False))
    reader = wire._reader
    on_frame = ch._on_frame
    per = []
    for r in range(rounds + 1):  # the first round warms up
        c0 = time.process_time()
        for item in reader.feed(data):
            on_frame(item)
        ch._acks.emit()
        if reader.hook_errors:
            raise RuntimeError(f"delivery hook failed: {reader.hook_errors[0][1]!r}")
        if r:
            per.append((time.process_time() - c0) / requests)
        if sub.stats.acked != requests * (r + 1) or not conn._wbuf:
            raise RuntimeError(f"not every request was answered and acked: {sub.stats}")
        conn._wbuf.clear()
    return per


def _instructions(requests: int, rounds: int, lean: bool) -> int:
    return callgrind_total(os.path.abspath(__file__), "--requests", str(requests), "--rounds", str(rounds),
                           *(["--lean"] if lean else []))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lean", action="store_true", help="requests and replies on the lean wire profile")
    ap.add_argument("--callgrind", action="store_true", help="instructions per request (valgrind)")
    a = ap.parse_args()
    wire = "lean" if a.lean else "go"
    if a.callgrind:
        one = _instructions(a.requests, 1, a.lean)
        three = _instructions(a.requests, 3, a.lean)
        print(f"rpc responder in-process ({wire} wire): {(three - one) / (2 * a.requests):,.0f} instructions "
              "per request (callgrind)")
        return
    per = run(a.requests, a.rounds, a.lean)
    print(f"rpc responder in-process ({wire} wire): {statistics.median(per) * 1e6:.2f} µs CPU per request "
          f"(median of {a.rounds}; min {min(per) * 1e6:.2f})")


if __name__ == "__main__":
    main()
