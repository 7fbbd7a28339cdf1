"""Sync stage functions and their timeout, on memory:// and RabbitMQ: without ``timeout=`` a sync stage runs
inline in the event loop (fast, not interrupted); with ``timeout=`` it runs in a worker thread, fails
on time (FlowTimeoutError, retried if a retry is set, else the flow fails and is compensated) and a
late result is discarded. Its compensation handler, when sync, runs the same way."""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from mmate_fast.stageflow import StageRetry, Workflow
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import engine_for


async def test_sync_stage_without_timeout_runs_inline(url: str, names: Names) -> None:
    threads: list[int] = []
    wf = Workflow(f"sync-{names.queue('wf')}")
    wf.add_stage("a", lambda ctx: threads.append(threading.get_ident()))
    async with engine_for(url, names, wf) as flows:
        state = await flows.wait(await flows.start(wf, {}), timeout=10)
        assert state.status == "completed" and threads == [threading.get_ident()]


async def test_sync_stage_with_timeout_runs_in_a_thread_and_fails_on_time(url: str, names: Names) -> None:
    threads: list[int] = []
    undone: list[int] = []
    finished = threading.Event()
    wf = Workflow(f"sync-{names.queue('wf')}")
    wf.add_stage("a", lambda ctx: {"a": 1}, timeout=5,
                 compensate=lambda ctx: undone.append(threading.get_ident()))

    def slow(ctx: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.get_ident())
        time.sleep(0.6)  # blocks its worker thread, not the event loop
        finished.set()
        return {"late": True}

    wf.add_stage("slow", slow, timeout=0.1)
    async with engine_for(url, names, wf) as flows:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while not finished.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.get_running_loop().create_task(tick())
        iid = await flows.start(wf, {})
        state = await flows.wait(iid, timeout=10)
        assert state.status == "compensated"
        assert threads and threads[0] != threading.get_ident()
        assert undone and undone[0] != threading.get_ident()   # a sync compensation of a stage with timeout=
        record = await flows.state(iid)
        assert record is not None and record.error_message is not None
        assert "did not finish within its timeout of 0.1 s" in record.error_message
        await asyncio.wait_for(ticker, timeout=5)              # the loop ran while the stage slept
        assert ticks > 1
        again = await flows.state(iid)
        assert again is not None and "slow.late" not in again.global_data  # the late result is discarded


async def test_sync_stage_timeout_with_retry(url: str, names: Names) -> None:
    attempts: list[int] = []
    wf = Workflow(f"sync-{names.queue('wf')}")

    def flaky(ctx: dict[str, Any]) -> dict[str, Any]:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            time.sleep(0.5)
            return {"attempt": 0}
        return {"attempt": len(attempts) - 1}

    wf.add_stage("flaky", flaky, timeout=0.1, retry=StageRetry(attempts=2, initial=0.01))
    async with engine_for(url, names, wf) as flows:
        state = await flows.wait(await flows.start(wf, {}), timeout=10)
        assert state.status == "completed" and state.global_data["flaky.attempt"] == 1
        await asyncio.sleep(0.6)  # let the first attempt's thread end within the test
