"""Behaviour suite: every test runs against the in-memory broker and the real RabbitMQ.

The amqp parameter is marked ``integration``; it is skipped only when MMATE_SKIP_BROKER=1.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mmate_fast.transports import Connection, connect

MEMORY_URL = "memory://behaviour"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _amqp_param() -> Any:
    marks = [pytest.mark.integration]
    if os.environ.get("MMATE_SKIP_BROKER") == "1":
        marks.append(pytest.mark.skip(reason="MMATE_SKIP_BROKER=1"))
    return pytest.param(AMQP_URL, id="amqp", marks=marks)


@pytest.fixture(params=[pytest.param(MEMORY_URL, id="memory"), _amqp_param()])
def url(request: pytest.FixtureRequest) -> str:
    if request.param.startswith("memory://"):
        from mmate_fast.transports.memory import reset_broker

        reset_broker("behaviour")
    return str(request.param)


class Names:
    """Unique queue/exchange names, deleted after the test."""

    def __init__(self) -> None:
        self.queues: list[str] = []
        self.exchanges: list[str] = []
        self._tag = uuid.uuid4().hex[:8]

    def queue(self, what: str = "q") -> str:
        name = f"bt-{what}-{self._tag}-{len(self.queues)}"
        self.queues.append(name)
        return name

    def service(self, what: str = "svc") -> str:
        """A unique service name; its service queue and that queue's ``dlq.`` are deleted after."""
        name = f"bt-{what}-{self._tag}-{len(self.queues)}"
        queue = f"{name}-queue"
        self.queues.extend([queue, f"dlq.{queue}"])
        return name

    def exchange(self, what: str = "x") -> str:
        name = f"bt-{what}-{self._tag}-{len(self.exchanges)}"
        self.exchanges.append(name)
        return name


@pytest.fixture(params=["memory", "sqlite", "sqlite-memory"])
def flow_store(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A StageFlow engine's store for the tests that run on each kind of hop: ``memory://`` (no
    coroutine, the store answers at once), a SQLite file (chained on the store's futures, the stage run
    inside its claim's transaction: ``stageflow._later``) and ``sqlite:///:memory:`` (every call on the
    store's writer thread, where the stage does not run: read, run, claim in turn)."""
    return {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path}/flows.db",
            "sqlite-memory": "sqlite:///:memory:"}[request.param]


@pytest.fixture
async def names(url: str) -> AsyncIterator[Names]:
    """Unique names; every queue and exchange named through it is deleted after the test (whether
    or not the test used the ``conn`` fixture)."""
    n = Names()
    yield n
    cleaner = await connect(url)
    try:
        for q in n.queues:
            ch = await cleaner.channel()
            try:
                await ch.queue_delete(q)
            finally:
                if ch.is_open:
                    await ch.close()
        for x in n.exchanges:
            ch = await cleaner.channel()
            try:
                await ch.exchange_delete(x)
            finally:
                if ch.is_open:
                    await ch.close()
    finally:
        await cleaner.close()


@pytest.fixture
async def conn(url: str, names: Names) -> AsyncIterator[Connection]:
    """A connection to the broker under test (``names`` cleans up after it is closed)."""
    c = await connect(url)
    try:
        yield c
    finally:
        if not c.is_closed:
            await c.close()
