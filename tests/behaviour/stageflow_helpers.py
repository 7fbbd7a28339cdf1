"""Helpers of the StageFlow behaviour tests: a client + engine with unique queue names (deleted after
the test), and a listener for the lifecycle events of mmate.events."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from mmate_fast.client import Client
from mmate_fast.stageflow import FlowEngine, Workflow
from tests.behaviour.conftest import Names

EVENT_TYPES = ("StageCompletedEvent", "WorkflowCompletedEvent", "WorkflowFailedEvent", "WorkflowCompensatedEvent")


class Events:
    """Lifecycle events seen on a test queue bound to mmate.events (``evt.#.{Type}``)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def on_delivery(self, delivery: Any) -> None:
        env = orjson.loads(delivery.body)
        self.seen.append((env["type"], env["payload"], dict(delivery.properties.headers or {})))

    def of(self, instance_id: str) -> list[tuple[str, int]]:
        """(type, sequence) of one instance's events, in arrival order."""
        return [(t, p["sequence"]) for t, p, _ in self.seen if p.get("instanceId") == instance_id]

    def payloads(self, instance_id: str, type_name: str) -> list[dict[str, Any]]:
        return [p for t, p, _ in self.seen if t == type_name and p.get("instanceId") == instance_id]

    async def wait_for(self, instance_id: str, count: int, timeout: float = 10.0) -> list[tuple[str, int]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.of(instance_id)) < count:
            if loop.time() > deadline:
                raise AssertionError(f"expected {count} events of {instance_id}, got {self.of(instance_id)}")
            await asyncio.sleep(0.01)
        return self.of(instance_id)


def flow_queues(names: Names, prefix: str, wf: Workflow) -> None:
    """Have ``names`` delete the workflow's queues and their DLQs after the test."""
    queues = [f"{prefix}{wf.id}.stage{i}" for i in range(len(wf.stages))] + [f"{prefix}compensation.{wf.id}"]
    for q in queues:
        names.queues.extend([q, f"dlq.{q}"])


@asynccontextmanager
async def engine_for(url: str, names: Names, *workflows: Workflow, events: Events | None = None,
                     serve: bool = True, publish_events: Any = True,
                     **options: Any) -> AsyncIterator[FlowEngine]:
    """A connected client and an engine (unique prefix) serving ``workflows``; ``events`` listens to
    the lifecycle events on a unique queue; ``publish_events`` is the engine's ``events``."""
    prefix = f"{names.queue('sf')}."
    for wf in workflows:
        flow_queues(names, prefix, wf)
    async with Client(url, service_name=names.service()) as client:
        if events is not None:
            ch = await client.connection.channel()
            q = names.queue("events")
            await ch.queue_declare(q, durable=False, auto_delete=False)
            for t in EVENT_TYPES:
                await ch.queue_bind(q, "mmate.events", f"evt.#.{t}")
            await ch.basic_consume(q, events.on_delivery, no_ack=True)
        engine = FlowEngine(client, prefix=prefix, events=publish_events, **options)
        try:
            for wf in workflows:
                await engine.register(wf, serve=serve)
            yield engine
        finally:
            await engine.close()
