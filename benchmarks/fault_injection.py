"""Fault injection (issue 7, "Done means"): confirmed publishes through connection kills, broker
restarts and poison messages; nothing may be lost and the consumer must keep running.

    python benchmarks/fault_injection.py [--messages 100000] [--kills 20] [--restarts 3] [--window 500]
                                         [--prefetch 10] [--settle 120] [--loop uvloop|asyncio] [--verbose]

Everything runs on a throw-away RabbitMQ node (``tests/integration/broker_node.py``), never on the
shared broker. A consumer ``Client`` (one sync handler, ``--prefetch``, dead-lettering on) serves its
service queue while a second ``Client`` publishes ``--messages`` events with ``publish_event``
(publisher confirms, ``--window`` awaited at once). Spread evenly over the run, the node closes both
clients' connections (broker side, by client-provided connection name) ``--kills`` times and restarts
``--restarts`` times (the whole node, same data dir); each fault waits until both clients reconnected.
One poison message of each kind of ``tests/poison.py`` (properties or routing key RabbitMQ forwards
but a strict decoder refuses) goes into the consumer's queue along the way, from a plain connection
of its own; without ``tests/poison.py`` that part is skipped and the report says so. After the last
fault one more event is published: the consumer is running when it gets handled.

The report: published, confirmed, consumed (unique), duplicates, unconsumed (confirmed, not handled
within ``--settle``), left in the queue at the end, lost (confirmed, neither handled nor left in the
queue), every poison message found in ``dlq.{queue}`` with its ``x-mmate-reason``, reconnects, wall
time; then one JSON line. The queues are read at the end with a raw-socket reader that decodes no
property (so it works whatever the poison). Exit code 0 when nothing was lost or left behind, every
publish was confirmed, every poison message is in the DLQ with reason ``bad-properties`` and the
consumer still runs; 1 otherwise; 2 when no throw-away node could be started.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import struct
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run from anywhere: this checkout's mmate_fast and tests (before an editable one)
    sys.path.insert(1 if sys.path and sys.path[0] == HERE else 0, ROOT)
if HERE not in sys.path:  # imported as benchmarks.fault_injection (the pytest wrapper): _common too
    sys.path.append(HERE)

import _common  # noqa: E402 - after the path fix above

from mmate_fast import Client, errors  # noqa: E402
from mmate_fast.amqp import connect  # noqa: E402
from mmate_fast.amqp.robust import RecoveryPolicy  # noqa: E402
from mmate_fast.contracts import Event, MessageKind  # noqa: E402
from tests.integration import broker_node  # noqa: E402
from tests.integration.broker_node import BrokerNode, BrokerNodeError  # noqa: E402

log = logging.getLogger("fault_injection")

EXPECTED_REASON = "bad-properties"
#: reconnect quickly (a restart takes seconds); awaited publishes wait for the link meanwhile
POLICY = RecoveryPolicy(initial_delay=0.1, max_delay=2.0, wait_timeout=120.0)
#: how long one fault (kill or restart, plus both clients reconnecting) may take; after one took
#: longer, the remaining faults are skipped (the report says so)
FAULT_TIMEOUT = 60.0
#: the consumer counts as stalled when nothing new was handled for this long
STALLED = 30.0
_REASON_KEY = b"\x0ex-mmate-reasonS"  # shortstr key + long-string type tag, as the subscriber writes it


@dataclass
class FaultEvent(Event):
    """The events of the run; ``n`` < 0 marks a poison message's body."""

    n: int = 0


@dataclass
class Options:
    messages: int = 100_000
    kills: int = 20
    restarts: int = 3
    window: int = 500
    prefetch: int = 10
    #: seconds to wait for the consumer to catch up after the last publish
    settle: float = 120.0


@dataclass
class Report:
    """What the run saw; ``problems`` empty means it passed."""

    messages: int = 0
    published: int = 0
    confirmed: int = 0
    publish_errors: dict[str, int] = field(default_factory=dict)
    consumed_unique: int = 0
    duplicates: int = 0
    unconsumed: int = 0
    left_in_queue: int = 0
    lost: int = 0
    consumer_running: bool = False
    kills: int = 0
    connections_closed: int = 0
    restarts: int = 0
    reconnects: dict[str, int] = field(default_factory=dict)
    #: poison kind -> x-mmate-reason found in the DLQ (None: not there); empty when skipped
    poison_in_dlq: dict[str, str | None] = field(default_factory=dict)
    poison_skipped: str = ""
    poison_handled: int = 0
    dlq_messages: int = 0
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _load_poison() -> tuple[Any, str]:
    """``tests.poison`` (another helper writes it) or (None, why it is skipped)."""
    try:
        return importlib.import_module("tests.poison"), ""
    except ImportError as exc:
        return None, f"poison messages skipped: tests/poison.py is not available ({exc})"


def _spread(count: int, total: int) -> list[int]:
    """``count`` positions spread evenly inside ``range(total)``."""
    return [(i + 1) * total // (count + 1) for i in range(count)]


def _fault_plan(kills: int, restarts: int) -> list[str]:
    """The order of the faults: restarts spread among the kills."""
    plan = ["kill"] * (kills + restarts)
    for i in range(restarts):
        plan[int((i + 0.5) * len(plan) / restarts)] = "restart"
    return plan


class Run:
    """One fault-injection run on ``node``."""

    def __init__(self, node: BrokerNode, opts: Options) -> None:
        self.node = node
        self.opts = opts
        self.report = Report(messages=opts.messages)
        self.tag = f"fi-{uuid.uuid4().hex[:8]}"
        self.counts = [0] * (opts.messages + 1)  # index opts.messages: the event after the last fault
        self.confirmed = bytearray(opts.messages + 1)
        self.publish_errors: Counter[str] = Counter()
        #: a fault did not recover in time: inject no more
        self.faults_broken = False
        #: the event numbers still in the service queue at the end
        self.left: set[int] = set()
        self.poison, self.report.poison_skipped = _load_poison()
        self.consumer = Client(node.url_with(name=f"{self.tag}-client-consumer"), service_name=self.tag,
                               prefetch=opts.prefetch, dead_letter=True, recovery=POLICY)
        self.publisher = Client(node.url_with(name=f"{self.tag}-client-publisher"),
                                service_name=f"{self.tag}-pub", recovery=POLICY)
        self.consumer.add_handler(FaultEvent, self._on_event)

    def _on_event(self, evt: FaultEvent) -> None:
        if evt.n < 0:
            self.report.poison_handled += 1  # a poison message reached the handler
        else:
            self.counts[evt.n] += 1

    # ------------------------------------------------------------------ the run
    async def run(self) -> Report:
        started = time.monotonic()
        rep = self.report
        try:
            await self.consumer.connect()
            await self.consumer.bind("mmate.events", "evt.poison.#")  # the poison messages' keys
            await self.consumer.start_consuming()
            await self.publisher.connect()
            await self._publish_through_faults()
            await self._after_last_fault()
        finally:
            rep.reconnects = {"consumer": _reconnects(self.consumer),
                              "publisher": _reconnects(self.publisher)}
            await _quietly(self.publisher.close())
            await _quietly(self.consumer.close())
        await self._inspect_queues()
        rep.wall_s = round(time.monotonic() - started, 1)
        self._judge()
        return rep

    async def _publish_through_faults(self) -> None:
        n, window = self.opts.messages, max(1, self.opts.window)
        faults = list(zip(_spread(self.opts.kills + self.opts.restarts, n),
                          _fault_plan(self.opts.kills, self.opts.restarts), strict=True))
        kinds = self.poison.POISON_KINDS if self.poison is not None else ()
        poisons = list(zip(_spread(len(kinds), n), range(len(kinds)), strict=True))
        fault: asyncio.Task[None] | None = None
        side: set[asyncio.Task[None]] = set()
        for start in range(0, n, window):
            end = min(n, start + window)
            while faults and faults[0][0] < end:
                if fault is not None:
                    await fault  # one fault at a time: it reconnected both clients before the next
                kind = faults.pop(0)[1]
                if not self.faults_broken:
                    fault = asyncio.ensure_future(self._fault(kind))  # hits publishes in flight
            while poisons and poisons[0][0] < end:
                side.add(asyncio.ensure_future(self._publish_poison(poisons.pop(0)[1])))
            await asyncio.gather(*(self._publish(i) for i in range(start, end)))
            if start // window % max(1, n // window // 10) == 0:
                log.info("published %d / %d (%d consumed)", end, n, sum(1 for c in self.counts if c))
        if fault is not None:
            await fault
        await asyncio.gather(*side)

    async def _publish(self, i: int) -> None:
        self.report.published += 1
        try:
            await self.publisher.publish_event(FaultEvent(n=i, aggregate_id="fi"))
        except errors.MmateError as exc:
            self.publish_errors[type(exc).__name__] += 1
            log.warning("publish %d failed: %r", i, exc)
        else:
            self.confirmed[i] = 1

    async def _fault(self, kind: str) -> None:
        """One kill or restart, then wait until both clients reconnected (a failure is a problem)."""
        consumer, publisher = self.consumer, self.publisher
        before = _reconnects(consumer), _reconnects(publisher)
        try:
            if kind == "kill":
                closed = await asyncio.to_thread(self.node.close_connections, f"{self.tag}-client-")
                self.report.kills += 1
                self.report.connections_closed += closed
                log.info("kill %d: closed %d connection(s)", self.report.kills, closed)
            else:
                await asyncio.to_thread(self.node.restart)
                self.report.restarts += 1
                log.info("restart %d done", self.report.restarts)
            await _until(lambda: _reconnects(consumer) > before[0] and _reconnects(publisher) > before[1]
                         and consumer.connection.is_connected and publisher.connection.is_connected,
                         FAULT_TIMEOUT, f"both clients to reconnect after a {kind}")
        except (TimeoutError, BrokerNodeError) as exc:
            self.report.problems.append(f"{kind}: {exc}; the remaining faults are skipped")
            self.faults_broken = True

    async def _publish_poison(self, index: int) -> None:
        """One poison message of ``POISON_KINDS[index]`` from a connection of its own (retried while
        the node restarts); its body is a valid FaultEvent envelope with ``n = -(index + 1)``."""
        assert self.poison is not None
        kind = self.poison.POISON_KINDS[index]
        assert self.publisher.publisher is not None
        _, _, out = self.publisher.publisher.prepare(FaultEvent(n=-(index + 1), aggregate_id="poison"),
                                                     kind=MessageKind.EVENT)
        deadline = time.monotonic() + FAULT_TIMEOUT
        while True:
            try:
                conn = await connect(self.node.url_with(name=f"{self.tag}-poison"), timeout=10)
                try:
                    await self.poison.publish_poison(conn, kind, "mmate.events", f"evt.poison.{index}",
                                                     out.body, persistent=True)  # as the events are
                finally:
                    await _quietly(conn.close())
                return
            except (errors.MmateError, TimeoutError, OSError) as exc:
                if time.monotonic() > deadline:
                    self.report.problems.append(f"could not publish poison {kind!r}: {exc!r}")
                    return
                log.info("poison %s: %r; trying again", kind, exc)
                await asyncio.sleep(0.5)

    async def _after_last_fault(self) -> None:
        """The consumer still runs: an event published after the last fault is handled. Then wait
        for every confirmed event: up to ``settle`` s, less once nothing new arrives for ``STALLED`` s."""
        n = self.opts.messages
        await self._publish(n)
        with contextlib.suppress(TimeoutError):
            await _until(lambda: self.counts[n] > 0, STALLED, "the event published after the last fault")
        self.report.consumer_running = self.counts[n] > 0
        deadline = time.monotonic() + self.opts.settle
        last, progress_at = -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - progress_at < STALLED:
            missing = sum(1 for c, ok in zip(self.counts, self.confirmed, strict=True) if ok and not c)
            if not missing:
                break
            if missing != last:
                last, progress_at = missing, time.monotonic()
            await asyncio.sleep(0.5)

    async def _inspect_queues(self) -> None:
        rep = self.report
        queue = self.consumer.service_queue
        dlq = f"dlq.{queue}"
        queues = await asyncio.to_thread(self.node.list_queues)
        left = await asyncio.to_thread(drain, self.node.amqp_port, queue) if queue in queues else []
        rep.left_in_queue = len(left)
        self.left = {n for n, _ in left}
        dead = await asyncio.to_thread(drain, self.node.amqp_port, dlq) if dlq in queues else []
        rep.dlq_messages = len(dead)
        if self.poison is not None:
            reasons = dict(dead)
            rep.poison_in_dlq = {kind: reasons.get(-(i + 1))
                                 for i, kind in enumerate(self.poison.POISON_KINDS)}
        conn = await connect(self.node.url)
        try:
            ch = await conn.channel()
            for name in (queue, dlq, self.publisher.service_queue):
                await ch.queue_delete(name)
        finally:
            await _quietly(conn.close())

    def _judge(self) -> None:
        rep, counts, left, problems = self.report, self.counts, self.left, self.report.problems
        rep.confirmed = sum(self.confirmed)
        rep.publish_errors = dict(self.publish_errors)
        rep.consumed_unique = sum(1 for c in counts if c)
        rep.duplicates = sum(counts) - rep.consumed_unique
        unconsumed = [i for i, ok in enumerate(self.confirmed) if ok and not counts[i]]
        rep.unconsumed = len(unconsumed)
        rep.lost = sum(1 for i in unconsumed if i not in left)
        handled_but_left = sum(1 for n in left if 0 <= n < len(counts) and counts[n])
        wrong = {k: v for k, v in rep.poison_in_dlq.items() if v != EXPECTED_REASON}
        checks = [
            (rep.lost, f"{rep.lost} confirmed message(s) lost: neither consumed nor left in the queue"),
            (rep.unconsumed, f"{rep.unconsumed} confirmed message(s) not consumed within "
                             f"{self.opts.settle} s (the consumer stalled?)"),
            (rep.publish_errors, f"publishes not confirmed: {rep.publish_errors}"),
            (not rep.consumer_running, "the event published after the last fault was not handled"),
            (handled_but_left, f"{handled_but_left} handled message(s) still in the queue (acks lost)"),
            (rep.poison_handled, f"{rep.poison_handled} poison message(s) reached the handler"),
            (wrong, f"poison not in the DLQ with reason {EXPECTED_REASON!r}: {wrong}"),
        ]
        problems += [text for failed, text in checks if failed]


# ---------------------------------------------------------------------------------- DLQ reader
def drain(port: int, queue: str) -> list[tuple[int, str | None]]:
    """Empty ``queue`` with basic.get; ``(n of the FaultEvent body, x-mmate-reason)`` per message.

    Raw sockets and ``struct`` only: no property is decoded (the DLQ copy of a poison message may
    still carry its poison), the reason is found by its header key in the raw property bytes.
    """
    from pamqp import commands as C

    raw = _common.RawAMQP(port=port)
    found: list[tuple[int, str | None]] = []
    try:
        while True:
            raw.send(C.Basic.Get(queue=queue, no_ack=True))
            method = _raw_frame(raw, 1)
            ids = struct.unpack_from(">HH", method)
            if ids == (60, 72):  # get-empty
                return found
            if ids != (60, 71):
                raise _common.AMQPError(f"basic.get on {queue}: unexpected method {ids}")
            header = _raw_frame(raw, 2)
            size = struct.unpack_from(">Q", header, 4)[0]
            body = b""
            while len(body) < size:
                body += _raw_frame(raw, 3)
            found.append((_event_number(body), _reason(header[12:])))
    finally:
        raw.close()


def _raw_frame(raw: _common.RawAMQP, want: int) -> bytes:
    """The payload of the next frame of type ``want`` (heartbeats skipped), undecoded."""
    while True:
        raw._fill(7)
        ftype, _channel, size = _common.HDR.unpack_from(raw.rbuf, 0)
        raw._fill(8 + size)
        payload = bytes(raw.rbuf[7:7 + size])
        del raw.rbuf[:8 + size]
        if ftype == want:
            return payload
        if ftype != 8:
            raise _common.AMQPError(f"expected a frame of type {want}, got {ftype}: {payload[:40]!r}")


def _reason(properties: bytes) -> str | None:
    at = properties.find(_REASON_KEY)
    if at < 0:
        return None
    start = at + len(_REASON_KEY)
    length = struct.unpack_from(">I", properties, start)[0]
    return properties[start + 4:start + 4 + length].decode(errors="replace")


def _event_number(body: bytes) -> int:
    try:
        return int(json.loads(body)["payload"]["n"])
    except (ValueError, KeyError, TypeError):
        return 0


# ---------------------------------------------------------------------------------- helpers
def _reconnects(client: Client) -> int:
    stats = getattr(client.connection, "stats", None)
    return int(getattr(stats, "reconnects", 0))


async def _until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def _quietly(aw: Awaitable[Any]) -> None:
    try:
        await aw
    except Exception as exc:  # clean-up must not hide the result
        log.warning("clean-up: %r", exc)


async def run_on(node: BrokerNode, opts: Options) -> Report:
    """The run on ``node`` (the pytest wrapper's entry point)."""
    return await Run(node, opts).run()


def print_report(rep: Report, out: Any = sys.stdout) -> None:
    """The human-readable report, then one JSON line."""
    lines = [
        f"messages         {rep.messages:,} (+1 after the last fault)",
        f"published        {rep.published:,}  confirmed {rep.confirmed:,}  failed {rep.publish_errors or 0}",
        f"consumed unique  {rep.consumed_unique:,}  duplicates {rep.duplicates:,}",
        f"unconsumed       {rep.unconsumed:,}",
        f"left in queue    {rep.left_in_queue:,}",
        f"lost             {rep.lost:,}",
        f"faults           {rep.kills} kills ({rep.connections_closed} connections closed), "
        f"{rep.restarts} restarts",
        f"reconnects       {rep.reconnects}",
        f"consumer running {rep.consumer_running}",
    ]
    if rep.poison_skipped:
        lines.append(rep.poison_skipped)
    else:
        lines.append(f"poison in DLQ    {rep.dlq_messages} message(s) in the DLQ; handled by the handler: "
                     f"{rep.poison_handled}")
        lines += [f"  {kind:<22} {reason or 'MISSING'}" for kind, reason in rep.poison_in_dlq.items()]
    lines.append(f"wall time        {rep.wall_s} s")
    lines += [f"PROBLEM: {p}" for p in rep.problems] or ["OK: nothing lost, consumer running"]
    print("\n".join(lines), file=out)
    print(json.dumps({**asdict(rep), "ok": rep.ok}), file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--messages", type=int, default=Options.messages)
    ap.add_argument("--kills", type=int, default=Options.kills)
    ap.add_argument("--restarts", type=int, default=Options.restarts)
    ap.add_argument("--window", type=int, default=Options.window, help="publishes awaited at once")
    ap.add_argument("--prefetch", type=int, default=Options.prefetch)
    ap.add_argument("--settle", type=float, default=Options.settle,
                    help="seconds to wait for the consumer after the last publish")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--verbose", action="store_true", help="progress and the library's warnings on stderr")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.ERROR, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    opts = Options(a.messages, a.kills, a.restarts, a.window, a.prefetch, a.settle)
    try:
        node = broker_node.start()
    except BrokerNodeError as exc:
        print(f"cannot start a throw-away RabbitMQ node: {exc}", file=sys.stderr)
        return 2
    try:
        rep = _common.run_loop(lambda: run_on(node, opts), a.loop)
    finally:
        node.stop()
    print_report(rep)
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
