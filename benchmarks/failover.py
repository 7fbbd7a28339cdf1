"""Cluster failover (issue 12 item 3): SIGKILL the RabbitMQ node the clients are connected to in the
middle of a confirmed publish + manual-ack consume of persistent messages to a quorum queue.

    python benchmarks/failover.py [--messages 100000] [--kill-at 0.5] [--window 1000] [--prefetch 200]
                                  [--settle 180] [--loop uvloop|asyncio] [--publish each|batch]

Starts a throw-away 3-node cluster (``tests/integration/broker_cluster.py``: own node names, loopback
ports, data dirs; never the shared broker) and two Clients with the cluster URL
``amqp://guest:guest@127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/`` (no shuffle: both connect to node 0)
and ``queue_type="quorum"``: a consumer (one sync handler, ``--prefetch``, acks after the handler)
and a publisher (persistent events, ``--window`` confirms awaited at once; what the broker nacks is
published again). Consuming starts at 80 % of ``--kill-at``, so there is a backlog at the kill.
When ``--kill-at`` of the messages are confirmed, the Erlang VM of the node both are connected to
gets SIGKILL (the queue's leader is there too: the queue elects a new one). The clients fail over to
the next node, restore topology and consumer, and re-send the unconfirmed publishes.

Report: published, consumed (unique), lost (confirmed but never handled), duplicates (handled more
than once: redelivered unacked deliveries + re-sent unconfirmed publishes), the node killed and the
node the clients resumed on, seconds from the kill to the reconnect and to the first message handled
on the new node, rates; then one JSON line. Exit code 0 when nothing was lost, 1 otherwise, 2 when
no cluster could be started. ``run_failover`` is what ``tests/integration/test_cluster.py`` runs
(with fewer messages) on its own cluster.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run from anywhere: this checkout's mmate_fast and tests
    sys.path.insert(1 if sys.path and sys.path[0] == HERE else 0, ROOT)

from mmate_fast import Client  # noqa: E402
from mmate_fast.amqp.robust import RecoveryPolicy  # noqa: E402
from mmate_fast.contracts import Event, kind_of, message_type  # noqa: E402
from mmate_fast.messaging import topology  # noqa: E402
from tests.integration import broker_cluster  # noqa: E402
from tests.integration.broker_cluster import BrokerCluster  # noqa: E402
from tests.integration.broker_node import BrokerNodeError  # noqa: E402

#: reconnect at once, then quickly; awaited publishes wait for the link meanwhile
POLICY = RecoveryPolicy(initial_delay=0.05, max_delay=1.0, wait_timeout=120.0)


@dataclass
class FailoverTick(Event):
    """One message of the run."""

    n: int = 0


@dataclass
class FailoverReport:
    messages: int
    published: int = 0
    consumed_unique: int = 0
    consumed_total: int = 0
    lost: int = 0
    duplicates: int = 0
    #: handled before the kill (the kill came in the middle of consuming when 0 < this < messages)
    consumed_at_kill: int = 0
    confirmed_at_kill: int = 0
    killed_node: int = -1
    #: node of the queue's leader before the kill (the clients' node: the leader moves with the kill)
    leader_node: int = -1
    resumed_node: int = -1
    kill_to_reconnected_s: float = -1.0
    kill_to_first_consumed_s: float = -1.0
    publisher_republished: int = 0
    #: publishes the broker nacked (or that failed otherwise) and the run published again
    publish_retries: int = 0
    publish_errors: set[str] = field(default_factory=set)
    #: publisher channels replaced after a nack (RabbitMQ 3.10 keeps nacking on them after a failover)
    nack_replacements: int = 0
    #: publishes the recovery sent, the broker nacked and the client sent again by itself
    nacked_resent: int = 0
    consumer_reconnects: int = 0
    #: a competing consumer connected to node 1 all along: what it handled after the kill, seconds
    #: from the kill to its first message, its reconnects (0: the leader moved under it)
    bystander_after_kill: int = 0
    bystander_first_s: float = -1.0
    bystander_reconnects: int = 0
    publisher_reconnects: int = 0
    queue_type: str = ""
    missing_ranges: list[tuple[int, int]] = field(default_factory=list)
    #: the queues when not everything arrived within ``settle``
    stuck: str = ""
    wall_s: float = 0.0
    publish_rate: float = 0.0
    consume_rate: float = 0.0


async def run_failover(cluster: BrokerCluster, messages: int, *, kill_at: float = 0.5, window: int = 1000,
                       prefetch: int = 200, settle: float = 180.0, batch: bool = False) -> FailoverReport:
    """Run the scenario on ``cluster`` (node 0 is killed, or whichever the clients are on); ``batch``:
    publish each window with ``publish_batch`` (a failed window is published again whole)."""
    report = FailoverReport(messages)
    batch_mode = batch
    service = f"wt6-failover-{uuid.uuid4().hex[:8]}"
    seen: Counter[int] = Counter()
    all_seen = asyncio.Event()
    loop = asyncio.get_running_loop()
    state: dict[str, float] = {"killed": 0.0, "first_after": 0.0, "reconnected": 0.0, "bystander": 0.0}
    consumer = Client(cluster.url, service_name=service, queue_type="quorum", prefetch=prefetch,
                      recovery=POLICY, connect_timeout=10)
    # the same service on node 1 first (node 0 last): a competing consumer the kill does not disconnect
    others = [f"amqp://guest:guest@127.0.0.1:{n.amqp_port}/" for n in cluster.nodes]
    bystander = Client(others[1:] + others[:1], service_name=service, queue_type="quorum",
                       prefetch=prefetch, recovery=POLICY, connect_timeout=10)
    publisher = Client(cluster.url, service_name=f"{service}-pub", declare_topology=False,
                       recovery=POLICY, connect_timeout=10)

    def on_tick(msg: FailoverTick) -> None:
        seen[msg.n] += 1
        if state["killed"] and not state["first_after"] and consumer.connection.stats.reconnects:
            state["first_after"] = time.monotonic()
        if len(seen) == messages:
            all_seen.set()

    def on_tick_bystander(msg: FailoverTick) -> None:
        if state["killed"]:
            report.bystander_after_kill += 1
            if not state["bystander"]:
                state["bystander"] = time.monotonic()
        on_tick(msg)

    consumer.add_handler(FailoverTick, on_tick)
    bystander.add_handler(FailoverTick, on_tick_bystander)
    started = time.monotonic()
    await consumer.connect()
    try:
        await publisher.connect()
        await bystander.connect()
        try:
            consumer.connection.on_reconnected.append(
                lambda *_: state.__setitem__("reconnected", state["reconnected"] or time.monotonic()))
            # bound before anything is published: the backlog published before consuming starts is kept
            binding = topology.binding_for(kind_of(FailoverTick), message_type(FailoverTick), service)
            assert binding is not None
            await consumer.bind(binding.exchange, binding.routing_key)
            leader = await loop.run_in_executor(None, _leader, cluster, consumer.service_queue)
            report.leader_node = next((i for i, n in enumerate(cluster.nodes) if n.node == leader), -1)
            kill_task: asyncio.Future[None] | None = None
            confirmed = 0
            consuming = False
            t_pub = time.monotonic()
            for first in range(0, messages, window):
                batch = [FailoverTick(n=n) for n in range(first, min(messages, first + window))]
                if batch_mode:
                    await _publish_batch_until_confirmed(publisher, batch, report)
                else:
                    await _publish_until_confirmed(publisher, batch, report)
                confirmed += len(batch)
                if not consuming and confirmed >= messages * kill_at * 0.8:  # a backlog when the node dies
                    consuming = True
                    await consumer.start_consuming()
                    await bystander.start_consuming()
                if kill_task is None and confirmed >= messages * kill_at:
                    report.confirmed_at_kill = confirmed
                    report.consumed_at_kill = len(seen)
                    report.killed_node = cluster.index_of_port(consumer.connection.params.port)
                    state["killed"] = time.monotonic()
                    kill_task = loop.run_in_executor(None, cluster.kill, report.killed_node)
            report.published = confirmed
            report.publish_rate = confirmed / (time.monotonic() - t_pub)
            if kill_task is not None:
                await kill_task
            try:
                await asyncio.wait_for(all_seen.wait(), settle)
            except TimeoutError:
                report.stuck = await loop.run_in_executor(None, cluster.ctl, "list_queues", "name", "type",
                                                          "messages_ready", "messages_unacknowledged",
                                                          "consumers", "-q")
            await asyncio.sleep(0.5)  # redeliveries still on their way count as duplicates too
            report.wall_s = time.monotonic() - started
            report.consume_rate = len(seen) / report.wall_s
            report.consumed_unique = len(seen)
            report.consumed_total = sum(seen.values())
            report.duplicates = report.consumed_total - report.consumed_unique
            missing = [n for n in range(messages) if n not in seen]
            report.lost = len(missing)
            report.missing_ranges = _ranges(missing)[:20]
            report.resumed_node = cluster.index_of_port(consumer.connection.params.port)
            report.consumer_reconnects = consumer.connection.stats.reconnects
            report.publisher_reconnects = publisher.connection.stats.reconnects
            report.publisher_republished = publisher.connection.stats.republished
            report.bystander_reconnects = bystander.connection.stats.reconnects
            report.nack_replacements = publisher.connection.stats.nack_replacements
            report.nacked_resent = publisher.connection.stats.nacked_resent
            if state["killed"]:
                if state["reconnected"]:
                    report.kill_to_reconnected_s = state["reconnected"] - state["killed"]
                if state["first_after"]:
                    report.kill_to_first_consumed_s = state["first_after"] - state["killed"]
                if state["bystander"]:
                    report.bystander_first_s = state["bystander"] - state["killed"]
            report.queue_type = _queue_type(cluster, consumer.service_queue)
        finally:
            await publisher.close()
            await bystander.close()
    finally:
        await consumer.close()
    return report


async def _publish_until_confirmed(publisher: Client, batch: list[FailoverTick],
                                   report: FailoverReport) -> None:
    """Publish ``batch`` (confirms awaited together); publish again what the broker nacked (a quorum
    queue nacks while it elects a new leader) or what failed otherwise, after a short pause."""
    pending = batch
    for attempt in range(1, 200):
        results = await asyncio.gather(*(publisher.publish_event(t, timeout=120) for t in pending),
                                       return_exceptions=True)
        failed = [t for t, r in zip(pending, results, strict=True) if isinstance(r, BaseException)]
        if not failed:
            return
        errors = {type(r).__name__ for r in results if isinstance(r, BaseException)}
        report.publish_retries += len(failed)
        report.publish_errors |= errors
        pending = failed
        await asyncio.sleep(min(1.0, 0.05 * attempt))
    raise RuntimeError(f"{len(pending)} publishes still failing after 200 attempts")


async def _publish_batch_until_confirmed(publisher: Client, batch: list[FailoverTick],
                                         report: FailoverReport) -> None:
    """``publish_batch`` of ``batch``; a window that fails (it does not say which message) is
    published again whole, after a short pause."""
    for attempt in range(1, 200):
        try:
            await publisher.publish_batch(batch, window=len(batch), timeout=120)
            return
        except Exception as exc:  # counted and retried; the report names the types
            report.publish_retries += len(batch)
            report.publish_errors.add(type(exc).__name__)
            await asyncio.sleep(min(1.0, 0.05 * attempt))
    raise RuntimeError("a window still failing after 200 attempts")


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def _leader(cluster: BrokerCluster, queue: str) -> str:
    for line in cluster.ctl("list_queues", "name", "leader", "-q").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue:
            return parts[1]
    return "?"


def _queue_type(cluster: BrokerCluster, queue: str) -> str:
    for line in cluster.ctl("list_queues", "name", "type", "-q").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue:
            return parts[1]
    return "?"


def print_report(report: FailoverReport) -> None:
    rows: list[tuple[str, Any]] = [
        ("messages", report.messages), ("published (confirmed)", report.published),
        ("consumed unique", report.consumed_unique), ("lost", report.lost),
        ("duplicates", report.duplicates), ("queue type", report.queue_type),
        ("confirmed / consumed at the kill", f"{report.confirmed_at_kill} / {report.consumed_at_kill}"),
        ("killed node -> resumed on", f"{report.killed_node} -> {report.resumed_node}"),
        ("queue leader before the kill on node", report.leader_node),
        ("kill -> consumer reconnected (s)", f"{report.kill_to_reconnected_s:.3f}"),
        ("kill -> first message consumed on the new node (s)", f"{report.kill_to_first_consumed_s:.3f}"),
        ("publisher re-sent unconfirmed (after the reconnect)", report.publisher_republished),
        ("publisher channels replaced after nacks / nacked re-sends sent again",
         f"{report.nack_replacements} / {report.nacked_resent}"),
        ("bystander on node 1: handled after kill / first (s) / reconnects",
         f"{report.bystander_after_kill} / {report.bystander_first_s:.3f} / {report.bystander_reconnects}"),
        ("published again after a nack / error", f"{report.publish_retries} {sorted(report.publish_errors)}"),
        ("reconnects consumer / publisher", f"{report.consumer_reconnects} / {report.publisher_reconnects}"),
        ("publish rate (msg/s)", f"{report.publish_rate:,.0f}"),
        ("consume rate incl. failover (msg/s)", f"{report.consume_rate:,.0f}"),
        ("wall (s)", f"{report.wall_s:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--kill-at", type=float, default=0.5)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--prefetch", type=int, default=200)
    ap.add_argument("--settle", type=float, default=180.0)
    ap.add_argument("--publish", choices=("each", "batch"), default="each",
                    help="each: publish_event per message, confirms awaited per window, nacked ones "
                         "again; batch: publish_batch per window, a failed window again whole")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = ap.parse_args(argv)
    try:
        cluster = broker_cluster.start(3)
    except BrokerNodeError as exc:
        print(f"cannot start a 3-node cluster: {exc}", file=sys.stderr)
        return 2
    print(f"3-node cluster up in {cluster.startup_seconds:.1f} s; load {os.getloadavg()[0]:.2f}",
          file=sys.stderr)
    try:
        runner = asyncio.run
        if args.loop == "uvloop":
            import uvloop

            runner = uvloop.run  # type: ignore[assignment]
        report = runner(run_failover(cluster, args.messages, kill_at=args.kill_at, window=args.window,
                                     prefetch=args.prefetch, settle=args.settle,
                                     batch=args.publish == "batch"))
    finally:
        cluster.stop()
    print_report(report)
    print(json.dumps(asdict(report), default=sorted))
    return 0 if report.lost == 0 and report.published == args.messages else 1


if __name__ == "__main__":
    sys.exit(main())
