"""Recovery where users meet it (issue 7 item 11): a ``Client`` with subscriptions, a bridge with
requests in flight, TTL retry and scheduled messages, through a link drop and a broker restart.

Everything runs on a throw-away RabbitMQ node of this module (``broker_node``), so these tests may
restart it at any time and run in every CI run. ``link-drop``: the clients reach the node through a
``TcpProxy`` that cuts every link at once (like a network failure); ``broker-restart``: the clients
connect to the node, which is stopped (Erlang VM included) and started again on the same data dir.
"""
from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import Client, errors
from mmate_fast.amqp import connect
from mmate_fast.amqp.robust import RecoveryPolicy
from mmate_fast.contracts import Event, Query, Reply
from mmate_fast.messaging.dispatcher import MessageContext
from mmate_fast.reliability import FixedDelay, TtlRetry, schedule
from mmate_fast.reliability.scheduling import delay_name
from mmate_fast.reliability.ttl_retry import delay_queue_name
from tests.integration import broker_node
from tests.integration.broker_node import BrokerNode
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

#: quick reconnects (a restart takes a few seconds); ``await publish()`` waits up to a minute meanwhile
FAST = RecoveryPolicy(initial_delay=0.05, max_delay=0.5, wait_timeout=60.0)
FAULTS = ("link-drop", "broker-restart")
#: how long everything may take to arrive after the fault (a restart is ~5 s on a loaded machine)
SETTLE = 60.0


@dataclass
class RecoveryTick(Event):
    """Handled by a plain (sync) handler."""

    n: int = 0


@dataclass
class RecoveryTock(Event):
    """Handled by an async handler."""

    n: int = 0


@dataclass
class RecoveryAsk(Query):
    n: int = 0


@dataclass
class RecoveryAnswer(Reply):
    n: int = 0


@dataclass
class RecoveryFlaky(Event):
    """Its handler fails the first delivery of every message (TTL retry brings it back)."""

    n: int = 0


@dataclass
class RecoveryLater(Event):
    """Published with ``schedule(...)``."""

    n: int = 0


@pytest.fixture(scope="module")
def node() -> Iterator[BrokerNode]:
    """This module's throw-away node (tests restart it)."""
    yield from broker_node.running(broker_node.start)


async def _until(cond: Callable[[], bool], timeout: float, what: Callable[[], str] | str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.02)


async def _fault(kind: str, node: BrokerNode, proxy: TcpProxy) -> None:
    if kind == "link-drop":
        assert proxy.cut() >= 1
    else:
        await asyncio.to_thread(node.restart)


def _url(fault: str, node: BrokerNode, proxy: TcpProxy, name: str) -> str:
    """Through the proxy for a link drop (it cuts the links), straight to the node for a restart."""
    return proxy.url(name=name) if fault == "link-drop" else node.url_with(name=name)


def _recovered(*clients: Client) -> Callable[[], bool]:
    def check() -> bool:
        return all(c.connection.is_connected and c.connection.stats.reconnects >= 1 for c in clients)

    return check


@asynccontextmanager
async def _no_orphaned_task_errors() -> Any:
    """Fail when the loop reports an exception nobody retrieved ("Task exception was never
    retrieved", an exception in a callback) while the block ran."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield
        gc.collect()  # a never-retrieved task exception is reported when the task is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not seen, "unretrieved exceptions on the loop: " + "; ".join(
        f"{c.get('message')}: {c.get('exception')!r}" for c in seen)


async def _drained(node: BrokerNode, queue: str, timeout: float = 15.0) -> dict[str, int]:
    """Wait until ``queue`` holds no message, ready or unacked (every ack reached the broker)."""
    end = time.monotonic() + timeout
    while True:
        info = (await asyncio.to_thread(node.list_queues)).get(queue, {"messages": -1, "consumers": 0})
        if info["messages"] == 0 or time.monotonic() > end:
            return info
        await asyncio.sleep(0.3)


async def _ready_counts(node: BrokerNode, *queues: str) -> dict[str, int]:
    """Messages ready in each queue (a passive declare: milliseconds, unlike ``rabbitmqctl``)."""
    conn = await connect(node.url)
    try:
        ch = await conn.channel()
        return {q: (await ch.queue_declare(q, passive=True)).message_count for q in queues}
    finally:
        await conn.close()


async def _delete_queues(node: BrokerNode, *names: str) -> None:
    conn = await connect(node.url)
    try:
        ch = await conn.channel()
        for name in names:
            await ch.queue_delete(name)
    finally:
        await conn.close()


@pytest.mark.parametrize("fault", FAULTS)
async def test_client_subscriptions_survive(node: BrokerNode, fault: str) -> None:
    """Sync and async handlers at prefetch 10 consume while another Client publishes confirmed events
    through the fault: every message is handled (duplicates allowed), every ack reaches the broker,
    the consumer is back on the queue and a message published after the fault is handled."""
    n = 1500  # per type
    svc = f"rec-sub-{uuid.uuid4().hex[:8]}"
    seen: Counter[tuple[str, int]] = Counter()

    def on_tick(evt: RecoveryTick) -> None:
        time.sleep(0.0003)  # a handler that does some work: the queue builds a backlog
        seen["tick", evt.n] += 1

    async def on_tock(evt: RecoveryTock, ctx: MessageContext) -> None:
        await asyncio.sleep(0.001)
        seen["tock", evt.n] += 1

    async with _no_orphaned_task_errors(), TcpProxy(node.amqp_port) as proxy:
        consumer = Client(_url(fault, node, proxy, f"{svc}-consumer"), service_name=svc, prefetch=10, recovery=FAST)
        publisher = Client(_url(fault, node, proxy, f"{svc}-publisher"), service_name=f"{svc}-pub", recovery=FAST)
        consumer.add_handler(RecoveryTick, on_tick)
        consumer.add_handler(RecoveryTock, on_tock)
        try:
            await consumer.connect()
            sub = await consumer.start_consuming()
            await publisher.connect()
            fault_task: asyncio.Task[None] | None = None
            window = 100
            for start in range(0, n, window):
                if fault_task is None and start >= n // 3:
                    fault_task = asyncio.ensure_future(_fault(fault, node, proxy))  # hits publishes in flight
                await asyncio.gather(*(
                    publisher.publish_event(cls(n=i, aggregate_id=f"a{i % 7}"))
                    for i in range(start, min(n, start + window)) for cls in (RecoveryTick, RecoveryTock)))
            assert fault_task is not None
            await fault_task
            await _until(_recovered(consumer, publisher), SETTLE, "both clients to reconnect")
            # publishing and consuming resume after the fault
            await publisher.publish_event(RecoveryTick(n=n, aggregate_id="after"))
            await publisher.publish_event(RecoveryTock(n=n, aggregate_id="after"))
            await _until(lambda: seen["tick", n] and seen["tock", n], SETTLE,
                         lambda: f"the messages published after the {fault} (seen {len(seen)} of {2 * n + 2}, "
                                 f"{sub.stats})")
            await _until(lambda: len(seen) == 2 * n + 2, SETTLE,
                         lambda: f"every message to be handled: {2 * n + 2 - len(seen)} missing ({sub.stats})")
            missing = [(k, i) for k in ("tick", "tock") for i in range(n + 1) if not seen[k, i]]
            assert not missing
            info = await _drained(node, consumer.service_queue)
            assert info == {"messages": 0, "consumers": 1}, (
                f"{consumer.service_queue} after everything was handled: {info} (acks lost?) {sub.stats}; "
                f"stale acks dropped: {consumer.connection.stats.stale_acks_dropped}")
            duplicates = sum(seen.values()) - len(seen)
            print(f"{fault}: {len(seen)} handled, {duplicates} duplicates, stats {sub.stats}, "
                  f"consumer {consumer.connection.stats.reconnects} / publisher "
                  f"{publisher.connection.stats.reconnects} reconnects")
        finally:
            await publisher.close()
            await consumer.close()
    await _delete_queues(node, consumer.service_queue, publisher.service_queue)


@pytest.mark.parametrize("fault", FAULTS)
async def test_bridge_requests_through_fault(node: BrokerNode, fault: str) -> None:
    """Requests in flight during the fault each get their reply or fail with a named error (none
    hangs, no stray task exception); requests after recovery all work."""
    svc = f"rec-rpc-{uuid.uuid4().hex[:8]}"
    timeout = 5.0

    async def answer(q: RecoveryAsk) -> RecoveryAnswer:
        await asyncio.sleep(0.02)  # several requests are in flight at any time
        return RecoveryAnswer(n=q.n)

    async def ask(requester: Client, i: int) -> str:
        try:
            reply = await asyncio.wait_for(requester.request(RecoveryAsk(n=i), timeout=timeout), timeout + 20)
        except errors.MmateError as exc:
            return type(exc).__name__
        except TimeoutError:
            return "HUNG"  # the guard fired: request() ignored its own timeout
        except Exception as exc:  # a builtin leaked out of request()
            return f"UNNAMED {exc!r}"
        return "ok" if isinstance(reply, RecoveryAnswer) and reply.n == i else f"WRONG REPLY {reply!r}"

    async with _no_orphaned_task_errors(), TcpProxy(node.amqp_port) as proxy:
        responder = Client(_url(fault, node, proxy, f"{svc}-responder"), service_name=svc, recovery=FAST)
        requester = Client(_url(fault, node, proxy, f"{svc}-requester"), service_name=f"{svc}-req", recovery=FAST)
        responder.add_handler(RecoveryAsk, answer)
        try:
            await responder.connect()
            await responder.start_consuming()
            await requester.connect()
            assert await ask(requester, -1) == "ok"
            tasks: list[asyncio.Task[str]] = []
            fault_task: asyncio.Task[None] | None = None
            after = 0
            while after < 100:  # a steady stream of requests: 100 before, during and 100 after the fault
                tasks.append(asyncio.ensure_future(ask(requester, len(tasks))))
                if len(tasks) == 100:
                    fault_task = asyncio.ensure_future(_fault(fault, node, proxy))
                elif fault_task is not None and fault_task.done():
                    after += 1
                await asyncio.sleep(0.005)
            assert fault_task is not None
            await fault_task
            outcomes = Counter(await asyncio.gather(*tasks))
            print(f"{fault}: in-flight request outcomes {dict(outcomes)}; bridge {requester.bridge.stats}")
            bad = {k: v for k, v in outcomes.items() if k == "HUNG" or " " in k}
            assert not bad, f"requests that hung, leaked a builtin or got a wrong reply: {bad}"
            assert outcomes["ok"] >= 100, f"the requests before the {fault} should have been answered: {outcomes}"
            await _until(_recovered(responder, requester), SETTLE, "both clients to reconnect")
            after = Counter(await asyncio.gather(*(ask(requester, 1000 + i) for i in range(50))))
            assert after == {"ok": 50}, f"requests after recovery: {dict(after)}; bridge {requester.bridge.stats}"
        finally:
            await requester.close()
            await responder.close()
    await _delete_queues(node, responder.service_queue, requester.service_queue)


async def test_ttl_retry_and_scheduled_messages_survive_broker_restart(node: BrokerNode) -> None:
    """Messages waiting in TTL-retry delay queues and in scheduling delay queues when the broker
    restarts are delivered after the restart (durable queues, persistent messages)."""
    k = 20
    delay = 5.0  # seconds in the delay queues (the restart takes about as long)
    svc = f"rec-ttl-{uuid.uuid4().hex[:8]}"
    failed_once: set[int] = set()
    handled: Counter[tuple[str, int]] = Counter()

    def flaky(evt: RecoveryFlaky) -> None:
        if evt.n not in failed_once:
            failed_once.add(evt.n)
            raise RuntimeError(f"first delivery of {evt.n} fails: retried through the delay queue")
        handled["flaky", evt.n] += 1

    def later(evt: RecoveryLater) -> None:
        handled["later", evt.n] += 1

    retry = TtlRetry(FixedDelay(delay, max_retries=3))
    consumer = Client(node.url_with(name=f"{svc}-consumer"), service_name=svc, prefetch=10, recovery=FAST,
                      failure_handler=retry, dead_letter=True)
    publisher = Client(node.url_with(name=f"{svc}-publisher"), service_name=f"{svc}-pub", recovery=FAST)
    consumer.add_handler(RecoveryFlaky, flaky)
    consumer.add_handler(RecoveryLater, later)
    retry_queue = delay_queue_name(consumer.service_queue, retry.delay_ms(1) or 0)
    schedule_queue = delay_name("mmate.events", int(delay * 1000))
    dlq = f"dlq.{consumer.service_queue}"
    async with _no_orphaned_task_errors():
        try:
            await consumer.connect()
            sub = await consumer.start_consuming()
            await publisher.connect()
            await asyncio.gather(*(publisher.publish_event(RecoveryFlaky(n=i, aggregate_id="x")) for i in range(k)))
            for i in range(k):
                await schedule(publisher, RecoveryLater(n=i, aggregate_id="x"), delay=delay)
            await _until(lambda: retry.retried == k, 10, lambda: f"{k} retries scheduled (have {retry.retried})")
            waiting = await _ready_counts(node, retry_queue, schedule_queue)
            assert waiting == {retry_queue: k, schedule_queue: k}, f"before the restart: {waiting}"
            assert not handled, "nothing may arrive before its delay"
            await asyncio.to_thread(node.restart)
            await _until(lambda: len(handled) == 2 * k, SETTLE,
                         lambda: f"the delayed messages after the restart: have {sorted(handled)}; {sub.stats}; "
                                 f"stale acks dropped: {consumer.connection.stats.stale_acks_dropped}")
            assert retry.gave_up == 0
            queues = await asyncio.to_thread(node.list_queues)
            assert queues.get(dlq, {}).get("messages", 0) == 0, f"{dlq}: {queues.get(dlq)}"
            print(f"after the restart: {len(handled)} handled, {sum(handled.values()) - len(handled)} duplicates; "
                  f"{sub.stats}")
        finally:
            await publisher.close()
            await consumer.close()
    await _delete_queues(node, consumer.service_queue, publisher.service_queue, dlq, retry_queue, schedule_queue)


async def test_fault_injection_short_run(node: BrokerNode) -> None:
    """The CI-sized run of ``benchmarks/fault_injection.py``: 10k confirmed publishes with 5
    connection kills and 1 restart, a sync consumer at prefetch 10, one poison message of each kind
    (when ``tests/poison.py`` exists): nothing lost or left behind, poison in the DLQ with its
    reason, the consumer still running."""
    from benchmarks import fault_injection

    opts = fault_injection.Options(messages=10_000, kills=5, restarts=1, settle=60.0)
    report = await fault_injection.run_on(node, opts)
    fault_injection.print_report(report)
    assert report.ok, "\n".join(report.problems)
