"""Micro-benchmark of StageFlow's state store per flow: the store calls the engine makes for one
3-stage flow, replayed on each backend; process CPU µs per flow (the store's own cost, no broker).

    python benchmarks/micro/flow_store_flow.py [--flows 4000] [--rounds 5] [--inflight 64]
                                               [--processes 1] [--only memory,sqlite,postgres]
                                               [--budget] [--ids engine|v4]
                                               [--postgres-url postgresql://postgres@127.0.0.1:5432/test]

The trace is recorded once from the real engine (``FlowEngine`` on the in-memory transport, the
``benchmarks/run.py stageflow`` workflow ``validate`` -> ``charge`` -> ``ship`` with its data): every
``save``, ``save_nowait``, ``stage_result``, ``claim_stage``, ``claim_stage_and_save`` and ``get``
with its arguments, in order. Each replayed flow gets a fresh instance id (in the records and the
serialized state too): the engine's time-ordered ones, or random UUID v4s with ``--ids v4`` (before
session 7). ``--inflight`` flows run at once per process, each awaiting its calls one
after the other (``save_nowait`` is not awaited, as in the engine), so a loop turn carries several
flows' calls, as in a worker. ``--processes P`` runs P processes on the same store at once (SQLite:
one file; the lock contention of the 3-process benchmark); CPU is summed over them, threads included
(``time.process_time`` of each process). Each round uses fresh instance ids in the same store, so the
tables grow over the rounds as they do in a run. The last round's flows are read back (the figures
count work that was done).

``--budget`` (SQLite): after the timed rounds each process reopens the store and replays one more
round counted, not timed: the SQL statements the store ran (a trace callback on its connections:
``BEGIN IMMEDIATE`` tried and won, ``BEGIN``, ``COMMIT``, the data statements, WAL checkpoints, after
each of which SQLite syncs the WAL and the database file: the store's only fsyncs) and the process's
read/write system calls and bytes (``/proc/self/io``: WAL frames, page reads, checkpoint copies), per
flow, summed over the processes.

stdout: a table (median µs CPU per flow over the rounds, flows/s of wall time, and ``store cost``:
the extra CPU per flow over ``memory``), the budget lines, then one JSON line
``{"workload": "flow-store-flow", "results": {backend: {"cpu_us_per_flow": ..., "flows_per_s": ...,
"budget": {...}}}}``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:  # run from anywhere: import the checkout's mmate_fast
    sys.path.insert(0, ROOT)
if os.path.join(ROOT, "benchmarks") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from mmate_fast.stageflow._ids import new_id  # noqa: E402
from mmate_fast.stageflow.store import FlowRecord, FlowStore, open_store  # noqa: E402

BACKENDS = ("memory", "sqlite", "postgres")
#: one recorded call: (method name, arguments)
Call = tuple[str, tuple[Any, ...]]


class _Recorder:
    """A FlowStore that records the engine's calls and passes them to a memory store."""

    def __init__(self) -> None:
        self.inner: Any = open_store("memory://")
        self.calls: list[Call] = []

    async def save(self, record: FlowRecord) -> None:
        self.calls.append(("save", (replace(record),)))
        await self.inner.save(record)

    def save_nowait(self, record: FlowRecord) -> None:
        self.calls.append(("save_nowait", (replace(record),)))
        self.inner.save_nowait(record)

    async def get(self, instance_id: str) -> FlowRecord | None:
        self.calls.append(("get", (instance_id,)))
        result: FlowRecord | None = await self.inner.get(instance_id)
        return result

    async def list(self, **kw: Any) -> list[FlowRecord]:
        result: list[FlowRecord] = await self.inner.list(**kw)
        return result

    async def claim_stage(self, instance_id: str, stage_key: str, result_json: str) -> str:
        self.calls.append(("claim_stage", (instance_id, stage_key, result_json)))
        result: str = await self.inner.claim_stage(instance_id, stage_key, result_json)
        return result

    async def claim_stage_and_save(self, instance_id: str, stage_key: str, result_json: str,
                                   record: FlowRecord) -> str:
        self.calls.append(("claim_stage_and_save", (instance_id, stage_key, result_json, replace(record))))
        result: str = await self.inner.claim_stage_and_save(instance_id, stage_key, result_json, record)
        return result

    async def stage_result(self, instance_id: str, stage_key: str) -> str | None:
        self.calls.append(("stage_result", (instance_id, stage_key)))
        result: str | None = await self.inner.stage_result(instance_id, stage_key)
        return result

    async def close(self) -> None:
        await self.inner.close()


async def record_trace() -> tuple[str, list[Call]]:
    """(instance id, the store calls of one flow) from the engine on the in-memory transport."""
    from _flow_common import INITIAL_DATA, STAGES

    from mmate_fast.client import Client
    from mmate_fast.stageflow import FlowEngine, Workflow

    wf = Workflow(f"micro-store-{uuid.uuid4().hex[:8]}")
    for stage, key, value in STAGES:
        wf.add_stage(stage, lambda ctx, key=key, value=value: {key: value})
    rec = _Recorder()
    async with Client("memory://", service_name=f"micro-{uuid.uuid4().hex[:6]}") as client:
        engine = FlowEngine(client, store=rec)  # type: ignore[arg-type]
        await engine.register(wf)
        await engine.wait(await engine.start(wf, dict(INITIAL_DATA)), timeout=10)  # warm
        rec.calls.clear()
        iid = await engine.start(wf, dict(INITIAL_DATA))
        state = await engine.wait(iid, timeout=10)
        assert state.status == "completed", state.status
        await engine.close()
    await rec.close()
    return iid, rec.calls


def _swap(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, FlowRecord):
        return FlowRecord(*(_swap(getattr(value, f), old, new) for f in FlowRecord.__dataclass_fields__))
    return value


def _v4() -> str:
    return str(uuid.uuid4())


#: ``--ids``: the engine's instance ids (time-ordered, ``stageflow._ids``) or random UUID v4s (before)
ID_MAKERS = {"engine": new_id, "v4": _v4}
_make_id = new_id


def flows_for(iid: str, trace: list[Call], n: int) -> list[list[Call]]:
    """``n`` copies of the trace, each with a fresh instance id (``--ids``)."""
    out = []
    for _ in range(n):
        new = _make_id()
        out.append([(name, tuple(_swap(a, iid, new) for a in args)) for name, args in trace])
    return out


async def replay(store: FlowStore, flows: list[list[Call]], inflight: int) -> float:
    """Run ``flows`` on ``store``, ``inflight`` at once; wall seconds."""
    todo = iter(flows)

    async def lane() -> None:
        for calls in todo:
            for name, args in calls:
                if name == "save_nowait":
                    store.save_nowait(*args)  # type: ignore[attr-defined]
                else:
                    await getattr(store, name)(*args)

    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(inflight)))
    return time.perf_counter() - t0


def _proc_io() -> dict[str, int]:
    """This process's I/O counters (Linux ``/proc/self/io``; empty elsewhere)."""
    try:
        with open("/proc/self/io") as f:
            return {k: int(v) for k, v in (line.split(": ") for line in f.read().splitlines())}
    except OSError:
        return {}


async def _budget_round(url: str, iid: str, trace: list[Call], args: argparse.Namespace,
                        start: Any) -> dict[str, int]:
    """One round on a fresh open of ``url``, its SQL statements and system I/O counted (totals)."""
    import sqlite3

    counts: dict[str, int] = {}

    def traced(sql: str) -> None:
        words = sql.split(None, 2)
        head = " ".join(words[:2]) if words and words[0] in ("BEGIN", "PRAGMA") else (words[0] if words else "")
        if head.startswith("PRAGMA") and "checkpoint" not in head:
            return
        if sql.startswith("--"):  # a trigger's statements are reported as "-- TRIGGER name"
            head = "trigger"
        counts[head] = counts.get(head, 0) + 1

    real_connect = sqlite3.connect

    def connect(*a: Any, **kw: Any) -> sqlite3.Connection:
        conn = real_connect(*a, **kw)
        conn.set_trace_callback(traced)
        return conn

    sqlite3.connect = connect  # type: ignore[assignment]  # the store opens connections lazily
    store = open_store(url)
    try:
        await store.get("warm-up")
        flows = flows_for(iid, trace, args.flows)
        if start is not None:
            start.wait()
        io0 = _proc_io()
        counts.clear()
        await replay(store, flows, args.inflight)
        await store.get(flows[-1][-1][1][0])
        io1 = _proc_io()
    finally:
        await store.close()
        sqlite3.connect = real_connect  # type: ignore[assignment]
    for key in ("syscr", "syscw", "rchar", "wchar"):
        if key in io0:
            counts[f"io:{key}"] = io1[key] - io0[key]
    return counts


async def _child_rounds(url: str, iid: str, trace: list[Call], args: argparse.Namespace,
                        start: Any) -> tuple[list[tuple[float, float]], dict[str, int]]:
    """(CPU s, wall s) of each round in this process, and the budget round's counts (or {})."""
    store = open_store(url)
    out = []
    budget: dict[str, int] = {}
    try:
        await store.get("warm-up")
        for _ in range(args.rounds):
            flows = flows_for(iid, trace, args.flows)
            if start is not None:
                start.wait()
            c0 = time.process_time()
            wall = await replay(store, flows, args.inflight)
            # the queued saves are committed before the clock stops
            last = flows[-1][-1][1][0]
            await store.get(last)
            cpu = time.process_time() - c0
            got = await store.get(last)
            assert got is not None and got.status == "completed", f"flow {last} was not stored"
            out.append((cpu, wall))
    finally:
        await store.close()
    if args.budget and url.startswith("sqlite"):
        budget = await _budget_round(url, iid, trace, args, start)
    return out, budget


def _run_child(url: str, iid: str, trace: list[Call], args: argparse.Namespace, start: Any,
               results: Any) -> None:
    import uvloop

    results.put(uvloop.run(_child_rounds(url, iid, trace, args, start)))


def bench(url: str, iid: str, trace: list[Call],
          args: argparse.Namespace) -> tuple[float, float, dict[str, float]]:
    """(median CPU µs per flow, median flows/s, the budget per flow) of ``url`` with
    ``args.processes`` processes."""
    import uvloop

    budgets: list[dict[str, int]]
    if args.processes == 1 or url.startswith("memory"):
        rounds, budget = uvloop.run(_child_rounds(url, iid, trace, args, None))
        per = [(c / args.flows, args.flows / w) for c, w in rounds]
        budgets = [budget]
    else:
        ctx = multiprocessing.get_context("fork")
        start = ctx.Barrier(args.processes)
        results = ctx.Queue()
        procs = [ctx.Process(target=_run_child, args=(url, iid, trace, args, start, results))
                 for _ in range(args.processes)]
        for p in procs:
            p.start()
        got = [results.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        each = [rounds for rounds, _ in got]
        budgets = [budget for _, budget in got]
        per = []
        for r in range(args.rounds):
            cpu = sum(e[r][0] for e in each)
            wall = max(e[r][1] for e in each)
            per.append((cpu / (args.flows * args.processes), args.flows * args.processes / wall))
    total: dict[str, int] = {}
    for b in budgets:
        for key, value in b.items():
            total[key] = total.get(key, 0) + value
    n = args.flows * (args.processes if not url.startswith("memory") else 1)
    per_flow = {key: round(value / n, 3) for key, value in sorted(total.items())}
    return statistics.median(c for c, _ in per) * 1e6, statistics.median(r for _, r in per), per_flow


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flows", type=int, default=4000, help="flows per round and process (default 4000)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--inflight", type=int, default=64, help="flows at once per process (default 64)")
    p.add_argument("--processes", type=int, default=1, help="processes sharing the store (default 1)")
    p.add_argument("--only", default="memory,sqlite", help="backends (default memory,sqlite)")
    p.add_argument("--budget", action="store_true",
                   help="SQLite: one more round per process, counting statements and system I/O per flow")
    p.add_argument("--ids", choices=sorted(ID_MAKERS), default="engine",
                   help="instance ids: the engine's time-ordered ones (default) or random v4 (before)")
    p.add_argument("--postgres-url", default=os.environ.get("MMATE_TEST_POSTGRES_URL",
                                                            "postgresql://postgres@127.0.0.1:5432/test"))
    args = p.parse_args(argv)
    global _make_id
    _make_id = ID_MAKERS[args.ids]
    only = [b for b in args.only.split(",") if b]
    unknown = set(only) - set(BACKENDS)
    if unknown:
        p.error(f"unknown backend(s) {sorted(unknown)}: use {', '.join(BACKENDS)}")
    import uvloop

    iid, trace = uvloop.run(record_trace())
    results: dict[str, dict[str, Any]] = {}
    for backend in only:
        folder = None
        cleanup = None
        if backend == "memory":
            url = "memory://"
        elif backend == "sqlite":
            folder = tempfile.TemporaryDirectory(prefix="flowbench-")
            url = f"sqlite:///{folder.name}/flows.db"
        else:
            schema = f"flowbench_{uuid.uuid4().hex[:12]}"
            sep = "&" if "?" in args.postgres_url else "?"
            url = f"{args.postgres_url}{sep}schema={schema}"

            async def drop(schema: str = schema) -> None:
                import asyncpg

                conn = await asyncpg.connect(args.postgres_url, timeout=10)
                try:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                finally:
                    await conn.close()

            cleanup = drop
        try:
            cpu_us, rate, budget = bench(url, iid, trace, args)
        finally:
            if cleanup is not None:
                uvloop.run(cleanup())
            if folder is not None:
                folder.cleanup()
        results[backend] = {"cpu_us_per_flow": round(cpu_us, 1), "flows_per_s": round(rate, 1)}
        if budget:
            results[backend]["budget"] = budget
    ops = ", ".join(name for name, _ in trace)
    print(f"flow store per flow: {len(trace)} calls ({ops}); {args.flows} flows x {args.rounds} rounds, "
          f"{args.inflight} in flight, {args.processes} process(es), {args.ids} ids")
    base = results.get("memory", {}).get("cpu_us_per_flow")
    print(f"{'backend':<9} {'µs CPU/flow':>12} {'flows/s':>10} {'store cost µs':>14}")
    for backend, r in results.items():
        extra = "" if base is None else f"{r['cpu_us_per_flow'] - base:>14,.1f}"
        print(f"{backend:<9} {r['cpu_us_per_flow']:>12,.1f} {r['flows_per_s']:>10,.0f} {extra}")
    for backend, r in results.items():
        b = r.get("budget")
        if b:
            sql = ", ".join(f"{k} {v:g}" for k, v in b.items() if not k.startswith("io:"))
            print(f"{backend} budget per flow: SQL: {sql}; system calls: {b.get('io:syscw', 0):g} writes "
                  f"({b.get('io:wchar', 0) / 1024:,.1f} KB), {b.get('io:syscr', 0):g} reads "
                  f"({b.get('io:rchar', 0) / 1024:,.1f} KB)")
    print(json.dumps({"workload": "flow-store-flow", "calls": [name for name, _ in trace],
                      "flows": args.flows, "inflight": args.inflight, "processes": args.processes,
                      "ids": args.ids, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
