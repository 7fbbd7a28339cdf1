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
from mmate_fast.messaging import topology
from mmate_fast.reliability import dead_lettering
from mmate_fast.transports import connect

from .behaviour_helpers import drain_queue, queue_depth, wait_until


@dataclass
class LazyJob(Event):
    job: str = ""


class _Service:
    """A Client consuming its service queue with a handler that fails for jobs named ``bad*``."""

    def __init__(self, url: str, names: Any, **options: Any) -> None:
        self.client = Client(url, service_name=names.service(), **options)
        self.handled: list[str] = []
        self.sub: Any = None

    async def __aenter__(self) -> _Service:
        await self.client.connect()

        def on_job(msg: LazyJob) -> None:
            if msg.job.startswith("bad"):
                raise ValueError(f"cannot do {msg.job}")
            self.handled.append(msg.job)

        self.client.add_handler(LazyJob, on_job)
        self.sub = await self.client.start_consuming()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    @property
    def dlq(self) -> str:
        return f"dlq.{self.client.service_queue}"

    async def publish(self, *jobs: str) -> None:
        for job in jobs:
            await self.client.publish_event(LazyJob(job=job, aggregate_id="x"))

    async def dead(self) -> list[Any]:
        """Take the messages of the DLQ (waiting for one)."""
        ch = await self.client.connection.channel()
        try:
            return await drain_queue(ch, self.dlq, expect=1)
        finally:
            await ch.close()


async def test_clean_run_leaves_no_dead_letter_queue(url: str, names: Any) -> None:
    async with _Service(url, names) as s:
        await s.publish("a", "b", "c")
        await wait_until(lambda: s.sub.stats.acked == 3, timeout=5)
        assert s.sub.dead_letter_queue == s.dlq
    conn = await connect(url)
    try:
        assert await queue_depth(conn, s.dlq) is None
    finally:
        await conn.close()


async def test_first_failure_declares_the_dlq_and_keeps_the_message(url: str, names: Any) -> None:
    async with _Service(url, names) as s:
        assert await queue_depth(s.client.connection, s.dlq) is None
        await s.publish("bad-1", "good")
        await wait_until(lambda: s.sub.stats.dead_lettered == 1 and s.handled == ["good"], timeout=5)
        assert s.sub.stats.rejected == 0
        [dead] = await s.dead()
        assert dead.properties.headers["x-mmate-reason"] == "handler-error"
        assert "cannot do bad-1" in dead.properties.headers["x-mmate-error"]


async def test_dead_letter_false_rejects_without_a_queue(url: str, names: Any) -> None:
    async with _Service(url, names, dead_letter=False) as s:
        assert s.sub.dead_letter_queue is None
        await s.publish("bad", "good")
        await wait_until(lambda: s.sub.stats.rejected == 1 and s.handled == ["good"], timeout=5)
        assert await queue_depth(s.client.connection, s.dlq) is None


async def test_concurrent_failures_declare_once(url: str, names: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    declared: list[str] = []
    real = topology.declare_dead_letter_queue

    async def counting(channel: Any, queue: str, **options: Any) -> str:
        declared.append(queue)
        await asyncio.sleep(0.05)  # keep the declare in flight while the other failures arrive
        return await real(channel, queue, **options)

    monkeypatch.setattr(dead_lettering.topology, "declare_dead_letter_queue", counting)
    async with Client(url, service_name=names.service(), prefetch=20) as client:

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
    async with _Service(url, names) as s:
        # someone else owns a dlq.{queue} with other arguments: our declare gets 406
        other = await s.client.connection.channel()
        await other.queue_declare(s.dlq, durable=True, arguments={"x-max-length": 1000})
        await s.publish("bad-1", "good-1")
        await wait_until(lambda: s.sub.stats.rejected == 1 and s.handled == ["good-1"], timeout=5)
        assert s.sub.stats.dead_lettered == 0
        await other.queue_delete(s.dlq)
        await other.close()
        await s.publish("bad-2", "good-2")
        await wait_until(lambda: s.sub.stats.dead_lettered == 1 and s.handled == ["good-1", "good-2"],
                         timeout=5)
        [dead] = await s.dead()
        assert "bad-2" in dead.properties.headers["x-mmate-error"]


async def test_dlq_deleted_after_use_is_declared_again(url: str, names: Any) -> None:
    async with _Service(url, names) as s:
        await s.publish("bad-1")
        await wait_until(lambda: s.sub.stats.dead_lettered == 1, timeout=5)
        admin = await s.client.connection.channel()
        assert await admin.queue_delete(s.dlq) == 1
        await admin.close()
        await s.publish("bad-2")
        await wait_until(lambda: s.sub.stats.dead_lettered == 2, timeout=5)
        [dead] = await s.dead()   # not dropped as unroutable
        assert "bad-2" in dead.properties.headers["x-mmate-error"]
