"""Micro-benchmark of the requester side of ``client.request`` in this process, without a broker: C
concurrent loops await ``Bridge.request`` of the rpc workload's query; a fake channel takes each
request's frames (through a real ``wire.PublishSink`` into a fake connection's buffer, the one-call
path; ``--no-sink``: ``publish_nowait``, the general path) and answers it on the next loop turn with the
workload's reply (envelope and properties as our responder sends them, transient, with the request's
correlation id) as AMQP frames: fed to a real ``FrameReader`` and an AMQP ``Channel`` on which the
bridge's reply callback is registered as ``basic_consume`` (no-ack) registers it, the items handed to
``Channel._on_frame`` as ``Connection.data_received`` does (a frame-reader hook, when the channel set
one, takes the deliveries inside ``feed``).
What is timed: the bridge (address, publish path, deadline, future, task wake-up, the reply from its
frames to the matched future) plus the fake's own small work (finding the correlation id in the
request body, patching it into the reply frames; the same on both paths).
Prints CPU µs per round trip (``time.process_time``), median of ``--rounds``; ``--callgrind``:
instructions per round trip (valgrind, load-independent; e.g. ``--requests 2000 --callgrind``).

    python benchmarks/micro/bridge_roundtrip.py [--requests 20000] [--concurrency 64] [--rounds 5] [--no-sink]
                                                [--callgrind]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # _rpc_types

from _callgrind import callgrind_total
from _rpc_types import REPLY_QUEUE_LIKE, new_query, reply_for

from mmate_fast._ext import load
from mmate_fast.amqp.channel import Channel, _Consumer
from mmate_fast.bridge import Bridge
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.publisher import Publisher

_wire = load("wire")
_frames = load("frames")
_CORR_KEY = b'"correlationId":"'
_SLOT = "00000000-0000-4000-8000-000000000000"  # a correlation id's length


_TAG = 0x7F6E5D4C3B2A1908  # a delivery tag placeholder, patched per reply


class _ReplyWire:
    """The reply side as the AMQP connection runs it: the replies' frames go into a real FrameReader
    and its items to a real amqp Channel's ``_on_frame`` (``data_received``'s loop); the bridge's
    reply callback is registered on that channel as ``basic_consume(no_ack=True)`` registers it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, bridge: Bridge) -> None:
        from pamqp import commands, frame

        self.loop = loop
        self._wbuf = bytearray()  # what the channel's Acks would write (nothing for no-ack)
        self._flush_pending = False
        self._reader = _frames.FrameReader()
        ch = self._ch = Channel(self, 1)
        ch._open = True
        callback = getattr(bridge, "_reply_callback", bridge._on_reply)
        ch._add_consumer("bench-reply", _Consumer(REPLY_QUEUE_LIKE, callback, None, True))
        q = new_query(1)
        q.reply_to = REPLY_QUEUE_LIKE
        out = build(reply_for(q), correlation_id=_SLOT, persistent=False)
        body = out.body
        head = struct.pack(">HHQ", 60, 0, len(body)) + bytes(out.properties)
        whole = (frame.marshal(commands.Basic.Deliver("bench-reply", _TAG, False, "", REPLY_QUEUE_LIKE), 1)
                 + struct.pack(">BHI", 2, 1, len(head)) + head + b"\xce"
                 + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce")
        at = whole.index(struct.pack(">Q", _TAG))
        self._pre, self._rest = whole[:at], whole[at + 8:]
        self._tag = 0
        self.body = body  # the reply envelope (with the slot), for finding its size

    def _schedule_flush(self) -> None:
        self._flush_pending = True

    def deliver(self, corrs: list[bytes]) -> None:
        """The replies carrying these correlation ids arrive in one read."""
        parts = []
        pre, rest, slot = self._pre, self._rest, _SLOT.encode()
        for corr in corrs:
            self._tag += 1
            parts.append(pre + struct.pack(">Q", self._tag) + rest.replace(slot, corr))
        reader = self._reader
        items = reader.feed(b"".join(parts))
        if reader.hook_errors:
            raise RuntimeError(f"reply hook failed: {reader.hook_errors[0][1]!r}")
        on_frame = self._ch._on_frame
        for item in items:
            on_frame(item)


class _AnsweringChannel:
    """Answers every request on the next loop turn with the reply (its correlation id)."""

    is_open = True

    def __init__(self, loop: asyncio.AbstractEventLoop, bridge: Bridge) -> None:
        self._loop = loop
        self._wire = _ReplyWire(loop, bridge)

    def publish_nowait(self, body: bytes, exchange: str, routing_key: str, properties: bytes,
                       mandatory: bool = False) -> None:
        at = body.find(_CORR_KEY) + len(_CORR_KEY)  # as the sink path's fake finds it
        self._loop.call_soon(self._wire.deliver, [body[at:at + 36]])


class _AnsweringConn:
    """The Connection attributes a ``wire.PublishSink`` reads; at each flush (next loop turn) every
    request written into ``_wbuf`` is answered with the reply (its correlation id), in one read."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wire: _ReplyWire) -> None:
        self._wbuf = bytearray()
        self._flush_pending = False
        self._loop = loop
        self._wire = wire

    def _schedule_flush(self) -> None:
        self._flush_pending = True
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        buf, self._wbuf, self._flush_pending = bytes(self._wbuf), bytearray(), False
        corrs = []
        at = buf.find(_CORR_KEY)
        while at >= 0:
            corrs.append(buf[at + len(_CORR_KEY):at + len(_CORR_KEY) + 36])
            at = buf.find(_CORR_KEY, at + 1)
        self._wire.deliver(corrs)


class _SinkChannel(_AnsweringChannel):
    """The same answers through the one-call path: the bridge writes into a real PublishSink."""

    def __init__(self, loop: asyncio.AbstractEventLoop, bridge: Bridge) -> None:
        super().__init__(loop, bridge)
        self._sink = _wire.PublishSink(_AnsweringConn(loop, self._wire), 1, 131072)

    def publish_sink(self) -> Any:
        return self._sink


class _NoTarget:
    def publish_nowait(self, *args: Any, **kwargs: Any) -> None:
        return None


async def run(requests: int, concurrency: int, rounds: int, sink: bool = True) -> list[float]:
    loop = asyncio.get_running_loop()
    bridge = Bridge(None, Publisher(_NoTarget(), confirms=False))
    bridge.channel = (_SinkChannel if sink else _AnsweringChannel)(loop, bridge)
    bridge._ready = True  # started: the reply queue is what the fake channel stands for
    left = [0]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await bridge.request(new_query(left[0]), timeout=30, persistent=False)

    per_round = []
    for r in range(rounds + 1):  # the first round warms up
        left[0] = requests
        c0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        if r:
            per_round.append((time.process_time() - c0) / requests)
        if bridge.stats.replied != requests * (r + 1):
            raise RuntimeError(f"not every request got its reply: {bridge.stats}")
    return per_round


def _instructions(requests: int, concurrency: int, rounds: int, no_sink: bool) -> int:
    """Instructions of a fresh process running ``rounds`` timed rounds (callgrind's total)."""
    return callgrind_total(os.path.abspath(__file__), "--requests", str(requests), "--concurrency",
                           str(concurrency), "--rounds", str(rounds), *(["--no-sink"] if no_sink else []))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-sink", action="store_true",
                    help="the fake channel has no publish_sink (requests built by the general path)")
    ap.add_argument("--callgrind", action="store_true",
                    help="instructions per round trip instead (valgrind: 1 and 3 rounds of --requests, "
                         "the difference / 2 x requests; load-independent)")
    a = ap.parse_args()
    if a.callgrind:
        one = _instructions(a.requests, a.concurrency, 1, a.no_sink)
        three = _instructions(a.requests, a.concurrency, 3, a.no_sink)
        path = "general path" if a.no_sink else "one-call path"
        print(f"bridge round trip in-process ({path}), concurrency {a.concurrency}: "
              f"{(three - one) / (2 * a.requests):,.0f} instructions per round trip (callgrind)")
        return
    import uvloop

    per = uvloop.run(run(a.requests, a.concurrency, a.rounds, not a.no_sink))
    path = "general path" if a.no_sink else "one-call path"
    print(f"bridge round trip in-process ({path}), concurrency {a.concurrency}: "
          f"{statistics.median(per) * 1e6:.2f} µs CPU per round trip (median of {a.rounds}; "
          f"min {min(per) * 1e6:.2f})")


if __name__ == "__main__":
    main()
