"""StageFlow across OS processes on the real broker, with one SQLite file store shared by the
processes (issue 9 item 3): worker processes (tests/integration/flow_worker.py) serve the stage
queues as competing consumers; this test process starts the flows and waits for them.

- a 3-stage flow over two workers fails at stage 2 and compensates stage 1;
- stages of one workflow served by different services (A: stages 0 and 2, B: stage 1);
- a worker SIGKILLed while a stage sleeps: the flow resumes on the other worker and completes, the
  stage's effect applied once;
- every worker stopped and restarted while flows are in flight: all flows complete.

Effects are counted from the workers' effect file (one line per effect, see flow_worker.py).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mmate_fast.amqp import connect
from mmate_fast.client import Client
from mmate_fast.stageflow import FlowEngine
from tests.integration import flow_worker

pytestmark = pytest.mark.integration

URL = os.environ.get("MMATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
WORKER = Path(__file__).with_name("flow_worker.py")
ROOT = Path(__file__).resolve().parents[2]


class Run:
    """One test's workflow: a unique workflow id, the shared SQLite store, the effect file, the
    worker processes (all killed at the end) and the queues to delete."""

    def __init__(self, tmp: Path) -> None:
        self.workflow = f"sf-proc-{uuid.uuid4().hex[:8]}"
        self.store = f"sqlite:///{tmp / 'flows.db'}"
        self.effects = str(tmp / "effects.log")
        self.procs: list[subprocess.Popen[str]] = []
        self.services: set[str] = set()

    def worker(self, service: str = "a", *extra: str) -> subprocess.Popen[str]:
        """Start a worker process and wait for its READY line."""
        svc = f"{self.workflow}-{service}"
        self.services.add(svc)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        p = subprocess.Popen([sys.executable, str(WORKER), "--workflow", self.workflow, "--store", self.store,
                              "--effects", self.effects, "--service", svc, "--url", URL, *extra],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.procs.append(p)
        assert p.stdout is not None
        r, _, _ = select.select([p.stdout], [], [], 20)
        line = p.stdout.readline() if r else ""
        assert line.strip() == "READY", f"worker did not start: {line!r} rc={p.poll()}"
        return p

    def stop(self, p: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
        """Signal one of our workers and reap it."""
        if p.poll() is None:
            p.send_signal(sig)
        p.wait(timeout=20)

    def lines(self) -> list[tuple[str, str, str, int]]:
        """The effect lines so far: (what, stage, order id, pid)."""
        if not os.path.exists(self.effects):
            return []
        with open(self.effects) as f:
            return [(w, s, o, int(pid)) for w, s, o, pid in (ln.split() for ln in f if ln.strip())]

    def count(self, what: str, stage: str, order: str | None = None) -> int:
        return sum(1 for w, s, o, _ in self.lines() if w == what and s == stage and order in (None, o))

    def queues(self) -> list[str]:
        base = [f"stageflow.{self.workflow}.stage{i}" for i in range(3)] + [f"stageflow.compensation.{self.workflow}"]
        return [*base, *(f"dlq.{q}" for q in base), *(f"{s}-queue" for s in self.services)]

    async def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(Exception):
                p.communicate(timeout=10)
        conn = await connect(URL)
        try:
            ch = await conn.channel()
            for q in self.queues():
                await ch.queue_delete(q)
        finally:
            await conn.close()


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Run]:
    r = Run(tmp_path)
    try:
        yield r
    finally:
        await r.cleanup()


@contextlib.asynccontextmanager
async def starter(r: Run) -> AsyncIterator[tuple[FlowEngine, Any]]:
    """This process's engine: it starts flows and waits for them; it serves no stage."""
    r.services.add(f"{r.workflow}-starter")
    wf = flow_worker.build(argparse.Namespace(workflow=r.workflow, effects=r.effects, sleep=[], fail=""))
    async with Client(URL, service_name=f"{r.workflow}-starter") as client:
        flows = FlowEngine(client, store=r.store)
        await flows.register(wf, serve=False)
        try:
            yield flows, wf
        finally:
            await flows.close()


async def until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def until_async(cond: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def order(i: int = 0) -> dict[str, Any]:
    return {"orderId": f"ORD-{uuid.uuid4().hex[:8]}-{i}", "amount": 99.95}


async def test_failure_at_stage_2_compensates_stage_1_across_two_workers(run: Run) -> None:
    run.worker("a", "--fail", "charge")
    run.worker("b", "--fail", "charge")
    async with starter(run) as (flows, wf):
        data = [order(i) for i in range(4)]
        iids = [await flows.start(wf, d) for d in data]
        states = [await flows.wait(iid, timeout=20) for iid in iids]
        for d, iid, state in zip(data, iids, states, strict=True):
            assert state.status == "compensated", state
            assert state.error_message and "charge failed on purpose" in state.error_message
            # the shared store has the whole story (wait may answer from the compensated event
            # alone, which carries no stage results, when it comes before the store's write)
            stored: list[Any] = [None]

            async def final(iid: str = iid, stored: list[Any] = stored) -> bool:
                stored[0] = await flows.state(iid)
                return stored[0] is not None and stored[0].status == "compensated"

            await until_async(final)
            assert [r.stage_id for r in stored[0].stage_results] == ["validate"]
            assert stored[0].current_stage == "charge"
            o = d["orderId"]
            assert run.count("done", "validate", o) == 1
            assert run.count("begin", "charge", o) == 1 and run.count("done", "charge", o) == 0
            assert run.count("undo", "validate", o) == 1
            assert run.count("begin", "ship", o) == 0


async def test_stages_of_one_workflow_served_by_different_services(run: Run) -> None:
    a = run.worker("a", "--stages", "0,2", "--compensation")
    b = run.worker("b", "--stages", "1")
    async with starter(run) as (flows, wf):
        data = [order(i) for i in range(3)]
        iids = [await flows.start(wf, d) for d in data]
        for iid in iids:
            state = await flows.wait(iid, timeout=20)
            assert state.status == "completed", state
            assert {"validate.validated", "charge.chargeId", "ship.trackingNo"} <= set(state.global_data)
    by_stage = {(s, pid) for w, s, _, pid in run.lines() if w == "done"}
    assert by_stage == {("validate", a.pid), ("charge", b.pid), ("ship", a.pid)}


async def test_a_worker_killed_mid_stage_and_the_flow_resumes_on_the_other(run: Run) -> None:
    a = run.worker("a", "--sleep", "charge=30")
    async with starter(run) as (flows, wf):
        d = order()
        iid = await flows.start(wf, d)
        o = d["orderId"]
        await until(lambda: run.count("begin", "charge", o) == 1)  # a sleeps in charge now
        b = run.worker("b")
        run.stop(a, signal.SIGKILL)
        state = await flows.wait(iid, timeout=25)
        assert state.status == "completed", state
        assert run.count("done", "validate", o) == 1
        assert run.count("done", "charge", o) == 1  # applied once: by b, a died before its effect
        assert run.count("done", "ship", o) == 1
        assert [pid for w, s, oo, pid in run.lines() if w == "done" and s == "charge" and oo == o] == [b.pid]
        assert [r.stage_id for r in state.stage_results] == ["validate", "charge", "ship"]


async def test_every_worker_restarted_while_flows_are_in_flight(run: Run) -> None:
    slow = ("--sleep", "charge=1.5")
    workers = [run.worker("a", *slow), run.worker("b", *slow)]
    async with starter(run) as (flows, wf):
        data = [order(i) for i in range(30)]  # more than the two workers take at once (2 x 10)
        iids = [await flows.start(wf, d) for d in data]
        await until(lambda: run.count("begin", "charge") >= 2)
        for p in workers:  # SIGTERM both: a clean stop; unacked stage messages go back to their queues
            p.send_signal(signal.SIGTERM)
        for p in workers:
            run.stop(p)
        done_before = run.count("done", "ship")
        assert done_before < len(data), "every flow finished before the restart: nothing was in flight"
        run.worker("a", *slow)
        run.worker("b", *slow)
        states = [await flows.wait(iid, timeout=25) for iid in iids]
        assert [s.status for s in states] == ["completed"] * len(data)
        for d in data:
            o = d["orderId"]
            assert run.count("done", "ship", o) == 1
            assert run.count("done", "charge", o) == 1  # a stage that finished is not run again
