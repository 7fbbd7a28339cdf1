"""The aio-pika programs in tests/compat_examples (tutorials 1-6 and the documentation's usage
patterns) run against RabbitMQ with only their import changed: each scenario runs the files as they
are (``mmate_fast.compat.aio_pika``) and again with the import put back to ``aio_pika`` (real
aio-pika), and both must print the same thing. Programs run in this process: a consumer's ``main()``
runs as a task until the output shows what it had to receive, then it is cancelled (as Ctrl+C would)."""
from __future__ import annotations

import asyncio
import contextlib
import io
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from tests.integration._compat import URL

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parent.parent / "compat_examples"
FACADE = "mmate_fast.compat.aio_pika"


def load(name: str, real: bool) -> dict[str, Any]:
    """The program's module namespace (not run as __main__), on the facade or on real aio-pika."""
    path = EXAMPLES / f"{name}.py"
    source = path.read_text()
    assert source.count(FACADE) >= 1, f"{name} does not import the facade"
    if real:
        source = source.replace(FACADE, "aio_pika")
    namespace: dict[str, Any] = {"__name__": f"compat_example_{name}", "__file__": str(path)}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace


class Programs:
    """Runs example programs of one flavour (facade or real) with a shared captured stdout."""

    def __init__(self, real: bool) -> None:
        self.real = real
        self.out = io.StringIO()
        self.tasks: list[asyncio.Task[Any]] = []

    async def run(self, name: str, *argv: str) -> None:
        """Run a program to its end."""
        sys.argv = [name, *argv]
        await asyncio.wait_for(load(name, self.real)["main"](), 20)

    async def start(self, name: str, *argv: str, ready: str) -> None:
        """Start a long-running program and wait until it printed ``ready``."""
        seen = self.out.getvalue().count(ready)
        sys.argv = [name, *argv]
        self.tasks.append(asyncio.create_task(load(name, self.real)["main"]()))
        await self.wait_for(ready, seen + 1)

    async def wait_for(self, text: str, count: int = 1, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while self.out.getvalue().count(text) < count:
                for task in self.tasks:
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()


async def both(scenario: Callable[[Programs], Awaitable[None]]) -> str:
    """Run ``scenario`` on real aio-pika then on the facade; they must print the same lines (in any
    order: a producer and a consumer in one process race to print)."""
    outputs = {}
    saved_argv = sys.argv
    for real in (True, False):
        programs = Programs(real)
        try:
            with contextlib.redirect_stdout(programs.out):
                await scenario(programs)
        finally:
            await programs.stop()
            sys.argv = saved_argv
        outputs[real] = programs.out.getvalue()
    assert sorted(outputs[False].splitlines()) == sorted(outputs[True].splitlines())
    return outputs[False]


@pytest.fixture(autouse=True)
async def _cleanup() -> Any:
    """The tutorials use fixed names: delete what they leave on the shared broker."""
    yield
    async with await aio_pika.connect(URL) as conn:
        ch = await conn.channel()
        for queue in ("hello", "task_queue", "task_queue_topic", "rpc_queue", "test_queue", "pool_queue"):
            await ch.queue_delete(queue)
        for exchange in ("logs", "direct_logs", "topic_logs"):
            await ch.exchange_delete(exchange)


async def test_tutorial_1_hello_world() -> None:
    async def scenario(p: Programs) -> None:
        await p.start("t1_receive", ready="Waiting for messages")
        await p.run("t1_send")
        await p.wait_for("Received message body b'Hello World!'")

    assert "Sent 'Hello World!'" in await both(scenario)


async def test_tutorial_2_work_queues() -> None:
    async def scenario(p: Programs) -> None:
        await p.start("t2_worker", ready="Waiting for messages")
        for text in ("First message.", "Second message..", "Third message..."):
            await p.run("t2_new_task", *text.split())
        await p.wait_for(" [x] Done", 3)

    out = await both(scenario)
    assert out.count("persistent=True") == 3


async def test_tutorial_3_publish_subscribe() -> None:
    async def scenario(p: Programs) -> None:
        await p.start("t3_receive_logs", ready="Waiting for logs")
        await p.start("t3_receive_logs", ready="Waiting for logs")
        await p.run("t3_emit_log", "warning:", "disk", "almost", "full")
        await p.wait_for("[x] b'warning: disk almost full'", 2)

    await both(scenario)


async def test_tutorial_4_routing() -> None:
    async def scenario(p: Programs) -> None:
        await p.start("t4_receive_logs_direct", "warning", "error", ready="Waiting for messages")
        await p.run("t4_emit_log_direct", "info", "not for us")
        await p.run("t4_emit_log_direct", "error", "Run.", "Run.", "Or", "it", "will", "explode.")
        await p.wait_for("'error':b'Run. Run. Or it will explode.'")
        assert "not for us'" not in p.out.getvalue().split("Sent")[-1]

    await both(scenario)


async def test_tutorial_5_topics() -> None:
    async def scenario(p: Programs) -> None:
        await p.start("t5_receive_logs_topic", "kern.*", "*.critical", ready="Waiting for messages")
        await p.run("t5_emit_log_topic", "kern.critical", "A critical kernel error")
        await p.run("t5_emit_log_topic", "user.info", "ignored")
        await p.run("t5_emit_log_topic", "app.critical", "A critical app error")
        await p.wait_for("'app.critical':b'A critical app error'")

    out = await both(scenario)
    assert "'kern.critical':b'A critical kernel error'" in out and "'user.info'" not in out


async def test_tutorial_6_rpc() -> None:
    async def scenario(p: Programs) -> None:
        await p.start("t6_rpc_server", ready="Awaiting RPC requests")
        await p.run("t6_rpc_client")

    assert " [.] Got 6765" in await both(scenario)


async def test_docs_simple_publisher_and_consumer() -> None:
    async def scenario(p: Programs) -> None:
        await p.start("ex_simple_consumer", ready="consuming")
        await p.run("ex_simple_publisher")
        await p.wait_for("b'Hello test_queue'")
        await asyncio.wait_for(p.tasks[0], 5)  # it stops by itself on that message

    await both(scenario)


async def test_docs_main_pooling_and_confirms() -> None:
    async def scenario(p: Programs) -> None:
        await p.run("ex_main")
        await p.run("ex_pooling")
        await p.run("ex_publisher_confirms")

    out = await both(scenario)
    assert "b'Hello' {'foo': 'bar'} text/plain" in out and "received 50" in out
    assert "confirmed 100 in queue 210" in out


async def test_docs_master_worker_and_rpc_patterns() -> None:
    async def scenario(p: Programs) -> None:
        await p.start("ex_worker", ready="worker ready")
        await p.run("ex_master")
        await p.wait_for(" done", 3)
        await p.start("ex_rpc_callee", ready="callee ready")
        await p.run("ex_rpc_caller")

    out = await both(scenario)
    assert sorted(line for line in out.splitlines() if line.endswith(" done")) == [
        "task 1 done", "task 5 done", "task 7 done"]
    assert [int(x) for x in out.split() if x.isdigit()][-10:] == [100 * i for i in range(10)]
