"""Integration tests talk to the real RabbitMQ: check once that it answers, and fail loudly if not.

A missing broker is a broken test environment, not a reason to skip: every test here errors with
a message saying how to start it (``bash ci/broker.sh``). ``MMATE_SKIP_BROKER=1`` turns that into
a skip, for machines that knowingly have no broker. The broker address comes from
``MMATE_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``).
"""
from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest

from mmate_fast.messaging import topology
from mmate_fast.transports import connect
from tests.integration.fleet_proc import FleetProcess

AMQP_URL = os.environ.get("MMATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
_PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
_CONNECT_TIMEOUT = 5.0


def _broker_problem(url: str) -> str | None:
    """Return why the broker at ``url`` is not usable, or None when it speaks AMQP 0-9-1."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT) as sock:
            sock.settimeout(_CONNECT_TIMEOUT)
            sock.sendall(_PROTOCOL_HEADER)
            first = sock.recv(1)
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc}"
    if first != b"\x01":  # a method frame (connection.start) comes first from a real broker
        return f"{host}:{port} answered but not with AMQP 0-9-1 connection.start (got {first!r})"
    return None


@pytest.fixture(scope="session", autouse=True)
def rabbitmq_url() -> str:
    """The URL of a RabbitMQ that answers; fails every integration test when there is none."""
    problem = _broker_problem(AMQP_URL)
    if problem is not None:
        if os.environ.get("MMATE_SKIP_BROKER") == "1":
            pytest.skip(f"RabbitMQ not available ({problem}); MMATE_SKIP_BROKER=1")
        pytest.fail(
            f"RabbitMQ is needed by the integration tests and is not available: {problem}. "
            "Start it with `bash ci/broker.sh`, or set MMATE_SKIP_BROKER=1 to skip these tests.",
            pytrace=False,
        )
    return AMQP_URL


@pytest.fixture
async def service(rabbitmq_url: str) -> AsyncIterator[str]:
    """A fresh service name for a fleet test; its queues (and its publisher's) are deleted afterwards."""
    name = f"fleet-test-{uuid.uuid4().hex[:8]}"
    yield name
    conn = await connect(rabbitmq_url)
    ch = await conn.channel()
    for q in (topology.service_queue(name), topology.service_queue(f"{name}-pub")):
        await ch.queue_delete(q)
    await conn.close()


@pytest.fixture
def fleets() -> Iterator[list[FleetProcess]]:
    """The fleets a test starts (append them); every one is killed at the end, whatever happened."""
    started: list[FleetProcess] = []
    yield started
    for f in started:
        f.kill()
