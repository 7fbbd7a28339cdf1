"""The ``stageflow`` workload on mmate_fast's StageFlow engine: the workflow ``validate`` ->
``charge`` -> ``ship`` (dict context, each stage a plain function returning its one key), served by
two worker processes (``FlowEngine.register(wf)``: Go's stage queues, consumed with the engine's
default concurrency), started by a third that keeps ``inflight`` flows running with
``iid = await flows.start(wf, data)`` + ``await flows.wait(iid)`` (completion = the engine's
WorkflowCompletedEvent, heard by its wait listener).

``BENCH_FLOW_STORE`` (set by run.py): ``memory`` — ``memory://`` in every process (each worker keeps
its own state); ``sqlite`` — one SQLite file shared by the three processes (``BENCH_FLOW_DB``, a
fresh file per run, deleted afterwards). ``BENCH_FLOW_EVENTS``: ``FlowEngine(events=...)`` of every
process: unset (the engine's default, the terminal events), ``all`` (Go's four lifecycle events) or
``terminal``.
Run as ``BENCH_FLOW_STORE=memory python benchmarks/_flow_mmate.py stageflow --messages N``;
``BENCH_FLOW_PROFILE=DIR`` writes a cProfile of every process's timed part to DIR.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from typing import Any

from _common import HOST, PASSWORD, PORT, USER, child_main, run_loop
from _flow_common import (
    FLOW_PREFETCH,
    INFLIGHT,
    INITIAL_DATA,
    STAGES,
    FlowNames,
    Starts,
    flow_workload,
    profiled,
    wait_for_stop,
    worker_result,
)

CLIENT = "mmate_fast"
URL = f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/?heartbeat=60"
STORE = os.environ.get("BENCH_FLOW_STORE", "memory")
EVENTS = os.environ.get("BENCH_FLOW_EVENTS", "terminal")
#: FlowEngine(events=...)
ENGINE_EVENTS: Any = True if EVENTS == "all" else EVENTS


def store_url() -> str:
    """The store of this process: ``memory://``, or the run's shared SQLite file."""
    if STORE == "sqlite":
        return f"sqlite:///{os.environ['BENCH_FLOW_DB']}"
    return "memory://"


def workflow(workflow_id: str, handled: list[int] | None = None) -> Any:
    """The benchmark's workflow: three stages, each returning its one key (merged by the engine as
    ``globalData["{stageId}.{key}"]``, as the hand-written rows do); ``handled[i]`` counts the runs
    of stage i."""
    from mmate_fast.stageflow import Workflow

    counts = handled if handled is not None else [0] * len(STAGES)

    def stage_fn(i: int, key: str, value: Any) -> Any:
        def fn(ctx: Any) -> dict[str, Any]:
            counts[i] += 1
            return {key: value}

        return fn

    wf = Workflow(workflow_id)
    for i, (stage, key, value) in enumerate(STAGES):
        wf.add_stage(stage, stage_fn(i, key, value))
    return wf


def _io_counts() -> tuple[int, int]:
    """(socket writes, socket reads) of this process's AMQP connections so far (``_tx_count`` /
    ``_rx_count``)."""
    import gc

    from mmate_fast.amqp.connection import Connection

    conns = [o for o in gc.get_objects() if isinstance(o, Connection)]
    return sum(c._tx_count for c in conns), sum(c._rx_count for c in conns)


class _IO:
    """``BENCH_FLOW_IO=FILE``: append this process's socket writes and reads over the timed part to FILE
    (the runner keeps the clients' own output)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.path = os.environ.get("BENCH_FLOW_IO")
        self.on = bool(self.path)
        self.t0 = _io_counts() if self.on else (0, 0)

    def done(self, units: int, unit: str) -> None:
        if self.on and units:
            tx, rx = _io_counts()
            with open(str(self.path), "a") as f:
                f.write(f"{CLIENT} {self.role} {os.getpid()}: writes {(tx - self.t0[0]) / units:.3f}, reads "
                        f"{(rx - self.t0[1]) / units:.3f} per {unit}\n")


def _client(names: FlowNames) -> Any:
    from mmate_fast.client import Client

    return Client(URL, service_name=names.service)


async def _worker(workflow_id: str) -> dict[str, Any]:
    from mmate_fast.stageflow import FlowEngine

    names = FlowNames(CLIENT, workflow_id)
    handled = [0] * len(STAGES)
    wf = workflow(workflow_id, handled)
    async with _client(names) as client:
        flows = FlowEngine(client, store=store_url(), concurrency=FLOW_PREFETCH, events=ENGINE_EVENTS)
        await flows.register(wf, serve=True)
        print("READY", flush=True)
        c0 = time.process_time()
        io = _IO("worker")
        with profiled("worker"):
            await wait_for_stop()
        cpu = time.process_time() - c0
        io.done(sum(handled), "stage message")
        await flows.close()
    return worker_result(cpu, handled, store=STORE)


def flow_worker(a: argparse.Namespace) -> dict[str, Any]:
    return dict(run_loop(lambda: _worker(a.queue), a.loop))


async def _starter(names: FlowNames, n: int, cap: float) -> dict[str, Any]:
    from mmate_fast.stageflow import FlowEngine

    wf = workflow(names.workflow_id)
    st = Starts(n)
    bad = [0]
    async with _client(names) as client:
        flows = FlowEngine(client, store=store_url(), concurrency=FLOW_PREFETCH, events=ENGINE_EVENTS)
        await flows.register(wf, serve=False)
        warm = await flows.start(wf, dict(INITIAL_DATA))  # one flow before the clock starts
        await flows.wait(warm, timeout=cap)

        async def lane() -> None:
            while st.started < n:
                st.started += 1
                iid = await flows.start(wf, dict(INITIAL_DATA))
                state = await flows.wait(iid, timeout=cap)
                if state.status != "completed":
                    bad[0] += 1
                st.complete()

        st.begin()
        io = _IO("starter")
        with profiled("starter"):
            await asyncio.wait_for(asyncio.gather(*(lane() for _ in range(min(n, INFLIGHT)))), timeout=cap)
        res = st.result()
        io.done(st.completed, "flow")
        await flows.close()
    return {**res, "bad_results": bad[0]}


def stageflow(a: argparse.Namespace) -> dict[str, Any]:
    row = CLIENT if STORE == "memory" else f"{CLIENT}_{STORE}"
    names = FlowNames(row if EVENTS == "all" else f"{row}_{EVENTS}")
    env = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="bench-flow-") if STORE == "sqlite" else None
    if tmp is not None:
        env["BENCH_FLOW_DB"] = os.environ["BENCH_FLOW_DB"] = os.path.join(tmp, "flows.db")

    def starter(names: FlowNames, n: int, cap: float) -> dict[str, Any]:
        return dict(run_loop(lambda: _starter(names, n, cap), a.loop))

    try:
        return flow_workload(CLIENT, __file__, a, starter, declare=False, env=env, names=names)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


RUNNERS = {"stageflow": stageflow, "flow-worker": flow_worker}

if __name__ == "__main__":
    child_main(CLIENT, RUNNERS)
