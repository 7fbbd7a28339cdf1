"""Micro-benchmark of the requester side of ``client.request`` in this process, without a broker: C
concurrent loops await ``Bridge.request`` of the rpc workload's query; a fake channel takes each
request's frames (through a real ``wire.PublishSink`` into a fake connection's buffer, the one-call
path; ``--no-sink``: ``publish_nowait``, the general path) and answers it on the next loop turn with the
workload's reply envelope carrying the request's correlation id, fed to the bridge's reply callback
as a delivery.
What is timed: the bridge (address, publish path, deadline, future, task wake-up, reply decode and
match) plus the fake's own small work (finding the correlation id in the request body, patching it
into the reply; the same on both paths).
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
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # _rpc_types

from _callgrind import callgrind_total
from _rpc_types import REPLY_QUEUE_LIKE, new_query, reply_for

from mmate_fast._ext import load
from mmate_fast.bridge import Bridge
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.publisher import Publisher

_wire = load("wire")
_CORR_KEY = b'"correlationId":"'
_SLOT = "00000000-0000-4000-8000-000000000000"  # a correlation id's length


class _Reply:
    __slots__ = ("body", "properties")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.properties = None


class _AnsweringChannel:
    """Answers every request on the next loop turn with the reply envelope (its correlation id)."""

    is_open = True

    def __init__(self, loop: asyncio.AbstractEventLoop, bridge: Bridge) -> None:
        q = new_query(1)
        q.reply_to = REPLY_QUEUE_LIKE
        self._body = build(reply_for(q), correlation_id=_SLOT, persistent=False).body
        self._loop = loop
        self._bridge = bridge

    def publish_nowait(self, body: bytes, exchange: str, routing_key: str, properties: bytes,
                       mandatory: bool = False) -> None:
        at = body.find(_CORR_KEY) + len(_CORR_KEY)  # as the sink path's fake finds it
        reply = _Reply(self._body.replace(_SLOT.encode(), body[at:at + 36]))
        self._loop.call_soon(self._bridge._on_reply, reply)


class _AnsweringConn:
    """The Connection attributes a ``wire.PublishSink`` reads; at each flush (next loop turn) every
    request written into ``_wbuf`` is answered with the reply envelope (its correlation id)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, bridge: Bridge, body: bytes) -> None:
        self._wbuf = bytearray()
        self._flush_pending = False
        self._loop = loop
        self._bridge = bridge
        self._body = body

    def _schedule_flush(self) -> None:
        self._flush_pending = True
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        buf, self._wbuf, self._flush_pending = bytes(self._wbuf), bytearray(), False
        on_reply, body, slot = self._bridge._on_reply, self._body, _SLOT.encode()
        at = buf.find(_CORR_KEY)
        while at >= 0:
            corr = buf[at + len(_CORR_KEY):at + len(_CORR_KEY) + 36]
            on_reply(_Reply(body.replace(slot, corr)))
            at = buf.find(_CORR_KEY, at + 1)


class _SinkChannel(_AnsweringChannel):
    """The same answers through the one-call path: the bridge writes into a real PublishSink."""

    def __init__(self, loop: asyncio.AbstractEventLoop, bridge: Bridge) -> None:
        super().__init__(loop, bridge)
        self._sink = _wire.PublishSink(_AnsweringConn(loop, bridge, self._body), 1, 131072)

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
