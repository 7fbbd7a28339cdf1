"""Graceful shutdown for real: a service in a subprocess gets SIGTERM while a handler is running.

The child runs ``run_until_signal(client)`` with a slow async handler. The parent waits until the
handler has started, sends SIGTERM, and checks: the process exits 0 within the deadline, the handler
finished, and the message was acked (the queue is empty afterwards, nothing comes back). A handler
slower than the deadline is cut off and its message goes back to the queue instead (not lost).
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmate_fast.client import Client
from mmate_fast.contracts import Command
from mmate_fast.messaging import topology
from mmate_fast.shutdown import GracefulShutdown, install_signal_handlers
from mmate_fast.transports import connect

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

CHILD = r'''
import asyncio, sys
from dataclasses import dataclass
from mmate_fast.client import Client
from mmate_fast.contracts import Command
from mmate_fast.shutdown import run_until_signal
from mmate_fast.transports import connect

url, service, handler_seconds, deadline = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])


@dataclass
class ShutdownWork(Command):
    order_id: str = ""


def say(*words):
    print(*words, flush=True)


async def main():
    client = Client(url, service_name=service, prefetch=5)

    @client.handler(ShutdownWork)
    async def work(cmd):
        say("started", cmd.order_id)
        try:
            await asyncio.sleep(handler_seconds)
        except asyncio.CancelledError:
            say("cancelled", cmd.order_id)
            raise
        say("finished", cmd.order_id)

    await client.connect()
    await client.start_consuming()
    if url.startswith("memory://"):  # in-process broker: the work comes from here
        await client.publish_command(ShutdownWork(order_id="mem-1", target_service=service))
    say("ready")
    sig = await run_until_signal(client, deadline=deadline)
    say("stopped", sig)
    if url.startswith("memory://"):  # same process, same broker: is the message still queued?
        conn = await connect(url)
        ch = await conn.channel()
        ok = await ch.queue_declare(f"{service}-queue", passive=True)
        say("left", ok.message_count)
        await conn.close()


asyncio.run(main())
'''


@dataclass
class ShutdownWork(Command):
    """Same type name as the child's class: the parent publishes, the child handles."""

    order_id: str = ""


class Child:
    """The service subprocess, with its stdout read line by line."""

    def __init__(self, script: Path, url: str, service: str, handler_seconds: float, deadline: float) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), url, service, str(handler_seconds), str(deadline)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        self.lines: list[str] = []

    async def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        """Read stdout until a line starting with ``prefix`` (fails on EOF or timeout)."""
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            remaining = end - loop.time()
            if remaining <= 0:
                raise AssertionError(f"child never said {prefix!r}; said {self.lines}")
            line = await asyncio.wait_for(loop.run_in_executor(None, self.proc.stdout.readline), remaining)
            if not line:
                raise AssertionError(f"child exited before saying {prefix!r}; said {self.lines}; "
                                     f"stderr: {self.stderr()}")
            self.lines.append(line.strip())
            if line.startswith(prefix):
                return line.strip()

    def finish(self, timeout: float) -> tuple[int, list[str]]:
        """Wait for the exit (killing it after ``timeout``); exit code and all stdout lines."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError(f"child still running {timeout} s after SIGTERM; said {self.lines}") from None
        self.lines += [line.strip() for line in out.splitlines() if line.strip()]
        return self.proc.returncode, self.lines

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    path = tmp_path / "shutdown_child.py"
    path.write_text(CHILD)
    return path


@pytest.fixture
async def service(rabbitmq_url: str) -> AsyncIterator[str]:
    """A unique service name; its durable queue is deleted afterwards."""
    name = f"mmate-test-shutdown-{uuid.uuid4().hex[:10]}"
    yield name
    conn = await connect(rabbitmq_url)
    try:
        ch = await conn.channel()
        await ch.queue_delete(topology.service_queue(name))
    finally:
        await conn.close()


async def _queue_counts(url: str, queue: str) -> tuple[int, int]:
    conn = await connect(url)
    try:
        ch = await conn.channel()
        ok = await ch.queue_declare(queue, passive=True)
        return ok.message_count, ok.consumer_count
    finally:
        await conn.close()


async def _publish_work(url: str, service: str, order_id: str) -> None:
    async with Client(url, service_name=f"{service}-sender") as sender:
        await sender.publish_command(ShutdownWork(order_id=order_id, target_service=service))
    conn = await connect(url)  # the sender's own queue is not needed
    try:
        ch = await conn.channel()
        await ch.queue_delete(topology.service_queue(f"{service}-sender"))
    finally:
        await conn.close()


async def test_sigterm_lets_the_inflight_handler_finish_and_ack(
        rabbitmq_url: str, service: str, child_script: Path) -> None:
    handler_seconds, deadline = 2.0, 10.0
    child = Child(child_script, rabbitmq_url, service, handler_seconds, deadline)
    try:
        await child.wait_for("ready")
        await _publish_work(rabbitmq_url, service, "rmq-1")
        await child.wait_for("started rmq-1")
        sent = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        rc, lines = await asyncio.to_thread(child.finish, deadline + 10)
        took = time.monotonic() - sent
    finally:
        child.kill()
    assert rc == 0, f"exit {rc}; said {lines}; stderr: {child.stderr()}"
    assert "finished rmq-1" in lines and not any(x.startswith("cancelled") for x in lines)
    assert f"stopped {int(signal.SIGTERM)}" in lines
    assert took < deadline + 5  # bounded by the deadline, not a speed claim
    # acked: nothing left in the queue, no consumer, and nothing redelivered to a new consumer
    assert await _queue_counts(rabbitmq_url, topology.service_queue(service)) == (0, 0)
    assert lines.count("started rmq-1") == 1


async def test_handler_slower_than_deadline_is_cut_off_and_requeued(
        rabbitmq_url: str, service: str, child_script: Path) -> None:
    handler_seconds, deadline = 60.0, 1.0
    child = Child(child_script, rabbitmq_url, service, handler_seconds, deadline)
    try:
        await child.wait_for("ready")
        await _publish_work(rabbitmq_url, service, "rmq-slow")
        await child.wait_for("started rmq-slow")
        child.proc.send_signal(signal.SIGTERM)
        rc, lines = await asyncio.to_thread(child.finish, deadline + 15)
    finally:
        child.kill()
    assert rc == 0, f"exit {rc}; said {lines}; stderr: {child.stderr()}"
    assert "finished rmq-slow" not in lines
    # not acked, not lost: back in the queue for the next instance of the service
    assert await _queue_counts(rabbitmq_url, topology.service_queue(service)) == (1, 0)


async def test_sigterm_on_memory_transport(child_script: Path) -> None:
    service = f"mem-{uuid.uuid4().hex[:8]}"
    child = Child(child_script, f"memory://{service}", service, 1.0, 10.0)
    try:
        await child.wait_for("started mem-1")
        child.proc.send_signal(signal.SIGTERM)
        rc, lines = await asyncio.to_thread(child.finish, 20)
    finally:
        child.kill()
    assert rc == 0, f"exit {rc}; said {lines}; stderr: {child.stderr()}"
    assert "finished mem-1" in lines and "left 0" in lines


async def test_second_signal_closes_at_once(child_script: Path) -> None:
    service = f"mem-{uuid.uuid4().hex[:8]}"
    child = Child(child_script, f"memory://{service}", service, 60.0, 30.0)
    try:
        await child.wait_for("started mem-1")
        child.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        child.proc.send_signal(signal.SIGINT)
        rc, lines = await asyncio.to_thread(child.finish, 15)  # far less than the 30 s deadline
    finally:
        child.kill()
    assert rc == 0, f"exit {rc}; said {lines}; stderr: {child.stderr()}"
    assert "finished mem-1" not in lines and "left 1" in lines  # requeued, not lost


async def test_install_signal_handlers_in_process() -> None:
    """The handler path without a subprocess: a signal to ourselves closes the client."""
    client = Client(f"memory://{uuid.uuid4().hex[:8]}", service_name="inproc")
    await client.connect()
    shutdown = install_signal_handlers(client, deadline=5.0, signals=(signal.SIGUSR1,))
    try:
        assert isinstance(shutdown, GracefulShutdown)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(shutdown.wait(), 10)
        assert shutdown.signal_received == signal.SIGUSR1
        assert client.connection.is_closed
    finally:
        shutdown.uninstall()
        await client.close()
