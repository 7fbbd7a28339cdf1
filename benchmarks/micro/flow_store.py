"""Micro-benchmark of StageFlow's state store: save and claim_stage per second on each backend.

    python benchmarks/micro/flow_store.py [--ops 20000] [--concurrency 1,64] [--only memory,sqlite,postgres]
                                          [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
                                          [--state-bytes 1000] [--loop uvloop|asyncio]

For each backend and concurrency C: C tasks share ``--ops`` operations (``save`` of distinct instances
with a ~``--state-bytes`` serialized state, then ``claim_stage`` of distinct keys), each task awaiting
its calls one after the other; the rate is operations / wall time of the whole run. SQLite uses a
file in a temporary folder (WAL, synchronous=NORMAL, as open_store sets it); PostgreSQL a fresh
schema, dropped at the end. A stored value is read back after each run (the figures count work that
was done).

stdout: a table, and as its last line one JSON object
``{"workload": "flow-store", "ops": N, "results": {backend: {op: {C: ops_per_s}}}}``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:  # run from anywhere: import the checkout's mmate_fast
    sys.path.insert(0, ROOT)

from mmate_fast.stageflow.store import FlowRecord, FlowStore, open_store  # noqa: E402

BACKENDS = ("memory", "sqlite", "postgres")


def _state(iid: str, size: int) -> str:
    pad = "x" * max(0, size - 200)
    return json.dumps({"workflowId": "bench", "instanceId": iid, "status": "running", "stageResults": [],
                       "globalData": {"pad": pad}, "startTime": "2026-11-30T00:00:00Z",
                       "lastModified": "2026-11-30T00:00:00Z", "version": 1})


async def _spread(ops: int, concurrency: int, call: Callable[[int], Awaitable[Any]]) -> float:
    """Run call(0..ops-1) on ``concurrency`` tasks; seconds of wall time."""
    async def worker(first: int) -> None:
        for n in range(first, ops, concurrency):
            await call(n)

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return time.perf_counter() - start


async def _measure(store: FlowStore, tag: str, ops: int, concurrency: int, state_bytes: int) -> dict[str, float]:
    states = [_state(f"{tag}-{n}", state_bytes) for n in range(ops)]

    async def save(n: int) -> None:
        await store.save(FlowRecord(f"{tag}-{n}", "bench", "running", 1, "s1", None, n, n, states[n], "bench"))

    async def claim(n: int) -> None:
        await store.claim_stage(f"{tag}-{n}", "0:s1", '{"ok":true}')

    save_s = await _spread(ops, concurrency, save)
    claim_s = await _spread(ops, concurrency, claim)
    last = f"{tag}-{ops - 1}"
    got = await store.get(last)
    assert got is not None and got.state_json == states[-1], "a saved record is missing"
    assert await store.stage_result(last, "0:s1") == '{"ok":true}', "a claim is missing"
    return {"save": ops / save_s, "claim_stage": ops / claim_s}


async def _bench(backend: str, args: argparse.Namespace) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {"save": {}, "claim_stage": {}}
    cleanup: Callable[[], Awaitable[None]] | None = None
    folder = None
    if backend == "memory":
        url = "memory://"
    elif backend == "sqlite":
        folder = tempfile.TemporaryDirectory(prefix="flowbench-")
        url = f"sqlite:///{folder.name}/flows.db"
    else:
        import asyncpg

        schema = f"flowbench_{uuid.uuid4().hex[:12]}"
        sep = "&" if "?" in args.postgres_url else "?"
        url = f"{args.postgres_url}{sep}schema={schema}&pool_max={args.pool_max}"

        async def drop() -> None:
            conn = await asyncpg.connect(args.postgres_url, timeout=10)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        cleanup = drop
    store = open_store(url)
    try:
        await store.get("warm-up")  # connect / create the schema outside the timing
        for c in args.concurrency:
            rates = await _measure(store, f"c{c}-{uuid.uuid4().hex[:6]}", args.ops, c, args.state_bytes)
            for op, rate in rates.items():
                out[op][c] = rate
            print(f"{backend:<9} c={c:<4} save {rates['save']:>10,.0f}/s  claim_stage "
                  f"{rates['claim_stage']:>10,.0f}/s", file=sys.stderr)
    finally:
        await store.close()
        if cleanup is not None:
            await cleanup()
        if folder is not None:
            folder.cleanup()
    return out


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for backend in args.only:
        results[backend] = await _bench(backend, args)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", type=int, default=20_000, help="operations per run (default 20000)")
    p.add_argument("--concurrency", default="1,64", help="comma-separated task counts (default 1,64)")
    p.add_argument("--only", default=",".join(BACKENDS), help=f"backends (default {','.join(BACKENDS)})")
    p.add_argument("--postgres-url", default=os.environ.get("MMATE_TEST_POSTGRES_URL",
                                                            "postgresql://postgres@127.0.0.1:5432/test"))
    p.add_argument("--pool-max", type=int, default=10, help="PostgreSQL pool size (default 10)")
    p.add_argument("--state-bytes", type=int, default=1000, help="size of each serialized state (default 1000)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.only = [b for b in args.only.split(",") if b]
    unknown = set(args.only) - set(BACKENDS)
    if unknown:
        p.error(f"unknown backend(s) {sorted(unknown)}: use {', '.join(BACKENDS)}")
    if args.loop == "uvloop":
        import uvloop

        results = uvloop.run(_main(args))
    else:
        results = asyncio.run(_main(args))
    print(f"flow store: {args.ops} ops per run, state ~{args.state_bytes} B, loop {args.loop}")
    print(f"{'backend':<9} {'op':<12} " + " ".join(f"{f'c={c} ops/s':>14}" for c in args.concurrency))
    for backend, ops in results.items():
        for op, by_c in ops.items():
            print(f"{backend:<9} {op:<12} " + " ".join(f"{by_c[c]:>14,.0f}" for c in args.concurrency))
    print(json.dumps({"workload": "flow-store", "ops": args.ops, "state_bytes": args.state_bytes,
                      "loop": args.loop, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
