"""Nothing lost by default (issue 7 item 6): a Client keeps failed messages in ``dlq.{queue}``,
declared on the first failure only, so a client that never fails a message leaves no queue behind.
Memory and RabbitMQ."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging import subscriber as subscriber_module
from mmate_fast.messaging import topology
from mmate_fast.transports import connect

from .behaviour_helpers import drain_queue, queue_depth, wait_until


@dataclass
class LazyJob(Event):
    job: str = ""


def _handler(handled: list[str]) -> Any:
    def on_job(msg: LazyJob) -> None:
        if msg.job.startswith("bad"):
            raise ValueError(f"cannot do {msg.job}")
        handled.append(msg.job)

    return on_job


async def test_clean_run_leaves_no_dead_letter_queue(url: str, names: Any) -> None:
    service = names.service()
    handled: list[str] = []
    async with Client(url, service_name=service) as client:
        client.add_handler(LazyJob, _handler(handled))
        sub = await client.start_consuming()
        for job in ("a", "b", "c"):
            await client.publish_event(LazyJob(job=job, aggregate_id="x"))
        await wait_until(lambda: sub.stats.acked == 3, timeout=5)
        dlq = sub.dead_letter_queue
        assert dlq == f"dlq.{client.service_queue}"
    conn = await connect(url)
    try:
        assert await queue_depth(conn, dlq) is None
    finally:
        await conn.close()


async def test_first_failure_declares_the_dlq_and_keeps_the_message(url: str, names: Any) -> None:
    service = names.service()
    handled: list[str] = []
    async with Client(url, service_name=service) as client:
        client.add_handler(LazyJob, _handler(handled))
        sub = await client.start_consuming()
        dlq = f"dlq.{client.service_queue}"
        assert await queue_depth(client.connection, dlq) is None
        await client.publish_event(LazyJob(job="bad-1", aggregate_id="x"))
        await client.publish_event(LazyJob(job="good", aggregate_id="x"))
        await wait_until(lambda: sub.stats.dead_lettered == 1 and handled == ["good"], timeout=5)
        assert sub.stats.rejected == 0
        ch = await client.connection.channel()
        [dead] = await drain_queue(ch, dlq, expect=1)
        assert dead.properties.headers["x-mmate-reason"] == "handler-error"
        assert "cannot do bad-1" in dead.properties.headers["x-mmate-error"]
        await ch.close()


async def test_dead_letter_false_rejects_without_a_queue(url: str, names: Any) -> None:
    service = names.service()
    handled: list[str] = []
    async with Client(url, service_name=service, dead_letter=False) as client:
        client.add_handler(LazyJob, _handler(handled))
        sub = await client.start_consuming()
        assert sub.dead_letter_queue is None
        await client.publish_event(LazyJob(job="bad", aggregate_id="x"))
        await client.publish_event(LazyJob(job="good", aggregate_id="x"))
        await wait_until(lambda: sub.stats.rejected == 1 and handled == ["good"], timeout=5)
        assert await queue_depth(client.connection, f"dlq.{client.service_queue}") is None


async def test_concurrent_failures_declare_once(url: str, names: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    declared: list[str] = []
    real = topology.declare_dead_letter_queue

    async def counting(channel: Any, queue: str) -> str:
        declared.append(queue)
        await asyncio.sleep(0.05)  # keep the declare in flight while the other failures arrive
        return await real(channel, queue)

    monkeypatch.setattr(subscriber_module.topology, "declare_dead_letter_queue", counting)
    service = names.service()
    async with Client(url, service_name=service, prefetch=20) as client:

        @client.handler(LazyJob)
        async def always_fails(msg: LazyJob) -> None:
            raise ValueError("no")

        sub = await client.start_consuming()
        await client.publish_batch([LazyJob(job=f"bad-{i}", aggregate_id="x") for i in range(20)])
        await wait_until(lambda: sub.stats.dead_lettered == 20, timeout=10)
        assert declared == [client.service_queue]
        assert await queue_depth(client.connection, f"dlq.{client.service_queue}") == 20


async def test_failed_declare_fails_only_that_move_and_the_next_failure_tries_again(
        url: str, names: Any) -> None:
    service = names.service()
    handled: list[str] = []
    async with Client(url, service_name=service) as client:
        client.add_handler(LazyJob, _handler(handled))
        sub = await client.start_consuming()
        dlq = f"dlq.{client.service_queue}"
        # someone else owns a dlq.{queue} with other arguments: our declare gets 406
        other = await client.connection.channel()
        await other.queue_declare(dlq, durable=True, arguments={"x-max-length": 1000})
        await other.close()
        await client.publish_event(LazyJob(job="bad-1", aggregate_id="x"))
        await client.publish_event(LazyJob(job="good-1", aggregate_id="x"))
        await wait_until(lambda: sub.stats.rejected == 1 and handled == ["good-1"], timeout=5)
        assert sub.stats.dead_lettered == 0
        admin = await client.connection.channel()
        await admin.queue_delete(dlq)
        await client.publish_event(LazyJob(job="bad-2", aggregate_id="x"))
        await client.publish_event(LazyJob(job="good-2", aggregate_id="x"))
        await wait_until(lambda: sub.stats.dead_lettered == 1 and handled == ["good-1", "good-2"], timeout=5)
        [dead] = await drain_queue(admin, dlq, expect=1)
        assert "bad-2" in dead.properties.headers["x-mmate-error"]
        await admin.close()


async def test_dlq_deleted_after_use_is_declared_again(url: str, names: Any) -> None:
    service = names.service()
    handled: list[str] = []
    async with Client(url, service_name=service) as client:
        client.add_handler(LazyJob, _handler(handled))
        sub = await client.start_consuming()
        dlq = f"dlq.{client.service_queue}"
        await client.publish_event(LazyJob(job="bad-1", aggregate_id="x"))
        await wait_until(lambda: sub.stats.dead_lettered == 1, timeout=5)
        admin = await client.connection.channel()
        assert await admin.queue_delete(dlq) == 1
        await client.publish_event(LazyJob(job="bad-2", aggregate_id="x"))
        await wait_until(lambda: sub.stats.dead_lettered == 2, timeout=5)
        [dead] = await drain_queue(admin, dlq, expect=1)   # not dropped as unroutable
        assert "bad-2" in dead.properties.headers["x-mmate-error"]
        await admin.close()
