"""``mmate monitor`` as a subprocess against the real broker (issue 10 item 4).

The figures come from the management API of the shared broker (plugin on :15672, ``ci/broker.sh``);
with a management URL nothing listens on, the queues named on the command line are counted by
passive declares over AMQP, and the output says so. The API refreshes its statistics every few
seconds: the tests poll, bounded, until the broker's figures show what they set up.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mmate_fast.transports import Connection, connect
from tests.integration.broker_node import free_port
from tests.integration.conftest import AMQP_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHARED_API = "http://127.0.0.1:15672/"
#: seconds the broker may take to show queue statistics (and rates: two samples) in the API
STATS_WAIT = 30.0


async def monitor(*argv: str, columns: int = 200) -> tuple[int, str, str]:
    """``mmate monitor ARGV`` in a fresh process -> (exit code, stdout, stderr). The command runs as a
    user runs it: without the suite's asyncio debug mode (whose slow-callback warnings on a loaded
    machine would be stderr lines of their own)."""
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "COLUMNS": str(columns)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmate_fast.cli", "monitor", *argv, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def snapshot_until(argv: list[str], done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """``mmate monitor --once --json ARGV`` until ``done(snapshot)`` (bounded); the last snapshot."""
    deadline = time.monotonic() + STATS_WAIT
    while True:
        code, out, err = await monitor("--once", "--json", *argv)
        assert code == 0, err
        snap: dict[str, Any] = json.loads(out)
        if done(snap) or time.monotonic() > deadline:
            return snap
        await asyncio.sleep(0.5)


def row(snap: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((q for q in snap["queues"] if q["name"] == name), None)


@pytest.fixture
async def broker() -> AsyncIterator[tuple[Connection, str]]:
    """A connection and a unique queue name ``mon-...``; the queue and its dlq. are deleted after."""
    conn = await connect(AMQP_URL)
    queue = f"mon-{uuid.uuid4().hex[:12]}"
    try:
        yield conn, queue
    finally:
        if not conn.is_closed:
            await conn.close()
        cleaner = await connect(AMQP_URL)
        try:
            for q in (queue, f"dlq.{queue}"):
                ch = await cleaner.channel()
                await ch.queue_delete(q)
                await ch.close()
        finally:
            await cleaner.close()


async def fill(conn: Connection, queue: str, n: int) -> None:
    ch = await conn.channel(publisher_confirms=True)
    await ch.queue_declare(queue, durable=True)
    for i in range(n):
        await ch.publish(f'{{"n":{i}}}'.encode(), "", queue)
    await ch.close()


async def test_api_snapshot_counts_consumers_and_dlq_depth(broker: tuple[Connection, str]) -> None:
    conn, queue = broker
    await fill(conn, queue, 3)
    await fill(conn, f"dlq.{queue}", 2)
    consumer = await conn.channel()
    await consumer.basic_qos(1)
    await consumer.basic_consume(queue, lambda d: None)  # holds one message unacked

    want = {"name": queue, "ready": 2, "unacked": 1, "consumers": 1, "dlq_messages": 2}
    snap = await snapshot_until(["--filter", f"{queue}*"],
                                lambda s: {k: (row(s, queue) or {}).get(k) for k in want} == want)
    assert snap["source"] == "management-api" and snap["management_url"] == SHARED_API
    assert snap["vhost"] == "/"
    # the dlq. queue is shown beside its queue, not as a row of its own; the filter keeps the rest out
    assert [q["name"] for q in snap["queues"]] == [queue], snap
    q = row(snap, queue)
    assert q is not None and {k: q[k] for k in want} == want, snap
    for rate in ("publish_rate", "deliver_rate", "ack_rate"):
        assert isinstance(q[rate], float) and q[rate] >= 0
    # a queue named on the command line that does not exist is reported
    code, out, err = await monitor("--once", "--json", queue, f"{queue}-nope")
    assert code == 0 and json.loads(out)["missing"] == [f"{queue}-nope"], err
    # the human view: the same figures in a table, and the source
    code, out, err = await monitor("--once", queue)
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if queue in ln)
    assert [c.strip() for c in line.strip("│ ").split("│")][:4] == [queue, "2", "1", "1"], out
    assert f"source: RabbitMQ management API at {SHARED_API} (vhost /)" in out


async def test_rates_and_consumer_lag_under_traffic(broker: tuple[Connection, str]) -> None:
    """A producer and an acking consumer: the broker's publish, deliver and ack rates show, and the
    lag is ready / deliver rate."""
    conn, queue = broker
    await fill(conn, queue, 1)
    consumer = await conn.channel()

    def ack(d: Any) -> None:
        consumer.basic_ack(d.delivery_tag)

    await consumer.basic_consume(queue, ack)
    producer = await conn.channel()
    stop = asyncio.Event()

    async def produce() -> None:
        while not stop.is_set():
            for _ in range(20):
                producer.publish_nowait(b"{}", "", queue)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(produce())
    try:
        # the API's figures come from samples taken every few seconds: wait until one shows them all
        snap = await snapshot_until(["--json", queue], lambda s: (row(s, queue) or {}).get("consumers") == 1 and all(
            ((row(s, queue) or {}).get(r) or 0) > 0 for r in ("publish_rate", "deliver_rate", "ack_rate")))
    finally:
        stop.set()
        await task
    q = row(snap, queue)
    assert q is not None and q["publish_rate"] > 0 and q["deliver_rate"] > 0 and q["ack_rate"] > 0, snap
    assert q["consumers"] == 1
    assert q["lag_seconds"] == pytest.approx(q["ready"] / q["deliver_rate"])


async def test_without_the_api_named_queues_are_counted_over_amqp(broker: tuple[Connection, str]) -> None:
    conn, queue = broker
    await fill(conn, queue, 3)
    await fill(conn, f"dlq.{queue}", 2)
    missing = f"mon-missing-{uuid.uuid4().hex[:8]}"
    dead_api = f"http://127.0.0.1:{free_port()}/"

    code, out, err = await monitor("--once", "--json", "--management-url", dead_api, queue, missing)
    assert code == 0, err
    snap = json.loads(out)
    assert snap["source"] == "amqp-passive" and snap["broker"] == "127.0.0.1:5672"
    assert dead_api in snap["fallback_reason"] and "did not answer" in snap["fallback_reason"]
    assert snap["missing"] == [missing]
    assert snap["queues"] == [{"name": queue, "ready": 3, "unacked": None, "consumers": 0, "publish_rate": None,
                               "deliver_rate": None, "ack_rate": None, "dlq_messages": 2, "lag_seconds": None}]

    code, out, err = await monitor("--once", "--management-url", dead_api, queue)
    assert code == 0, err
    assert "passive queue.declare over AMQP" in out and "no rates" in out and "publish/s" not in out
    line = next(ln for ln in out.splitlines() if queue in ln)
    assert [c.strip() for c in line.strip("│ ").split("│")][:4] == [queue, "3", "-", "0"], out


async def test_a_cluster_url_is_watched_through_its_nodes(broker: tuple[Connection, str]) -> None:
    """A multi-node URL (issue 12): the management API of its first node, and over AMQP whichever node
    answers (here the second address is a port nothing listens on)."""
    conn, queue = broker
    await fill(conn, queue, 2)
    cluster = f"amqp://guest:guest@127.0.0.1:5672,127.0.0.1:{free_port()}/"
    snap = await snapshot_until(["--url", cluster, queue], lambda s: (row(s, queue) or {}).get("ready") == 2)
    assert snap["source"] == "management-api" and (row(snap, queue) or {}).get("ready") == 2, snap
    dead_api = f"http://127.0.0.1:{free_port()}/"
    code, out, err = await monitor("--once", "--json", "--url", cluster, "--management-url", dead_api, queue)
    assert code == 0, err
    snap = json.loads(out)
    assert snap["source"] == "amqp-passive" and (row(snap, queue) or {}).get("ready") == 2, snap


async def test_without_the_api_and_no_queue_named_it_fails_with_what_to_do() -> None:
    dead_api = f"http://127.0.0.1:{free_port()}/"
    code, out, err = await monitor("--once", "--management-url", dead_api)
    assert code == 1 and out == ""
    assert err.startswith("mmate monitor: error: ") and len(err.strip().splitlines()) == 1
    assert "did not answer" in err and "mmate monitor QUEUE" in err and "Traceback" not in err


async def test_live_view_refreshes_then_exits_after_count(broker: tuple[Connection, str]) -> None:
    conn, queue = broker
    await fill(conn, queue, 1)
    code, out, err = await monitor("--count", "2", "--interval", "0.2", queue)
    assert code == 0, err
    assert queue in out and "source: RabbitMQ management API" in out
    code, out, err = await monitor("--json", "--count", "3", "--interval", "0.2", queue)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all(json.loads(ln)["source"] == "management-api" for ln in lines)


@pytest.mark.parametrize("argv", [["--url", "memory://x", "--once"], ["--interval", "0", "--once"],
                                  ["--url", "ftp://x", "--once"]])
async def test_bad_use_exits_2(argv: list[str]) -> None:
    code, _, err = await monitor(*argv)
    assert code == 2 and "Traceback" not in err and err.strip()
