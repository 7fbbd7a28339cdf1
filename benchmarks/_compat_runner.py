"""``run.py publish|publish-confirm|consume|rpc --level aiopika-compat``: the aio-pika benchmark
clients (_aiopika.py, _rpc_aiopika.py) run twice in the same invocation, once on real aio-pika (row
``aio_pika``) and once with ``import aio_pika`` resolving to ``mmate_fast.compat.aio_pika`` (row
``aiopika_compat``, BENCH_AIO_PIKA=compat, see _aiopika_alias.py): the same code, only the import
differs. The raw client runs too (``raw``, the limit). Rows run one after another, fresh processes,
``--repeat`` times; ratios are medians of per-repetition ratios. The last stdout line is one JSON
object with ``rates``, ``vs_aio_pika`` (aiopika_compat / aio_pika), ``vs_raw`` (aiopika_compat /
raw) and the client CPU per message (rpc: keyed by ``c{concurrency}``)."""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

from _common import run_child_process

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORDER = ("raw", "aio_pika", "aiopika_compat")
SCRIPTS = {"raw": "_raw.py", "aio_pika": "_aiopika.py", "aiopika_compat": "_aiopika.py"}
RPC_SCRIPTS = {"raw": "_rpc_raw.py", "aio_pika": "_rpc_aiopika.py", "aiopika_compat": "_rpc_aiopika.py"}
DEFAULT_N = {"publish": 30_000, "publish-confirm": 30_000, "consume": 30_000, "rpc": 5_000}
WORKLOADS = tuple(DEFAULT_N)


def _run(client: str, workload: str, n: int, conc: int, loop: str,
         timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), ROOT) if p)
    env.pop("BENCH_BODY", None)
    env.pop("BENCH_AIO_PIKA", None)
    if client == "aiopika_compat":
        env["BENCH_AIO_PIKA"] = "compat"
    if workload == "rpc":
        argv = [sys.executable, os.path.join(HERE, RPC_SCRIPTS[client]), "requester", "--messages", str(n),
                "--concurrency", str(conc), "--loop", loop]
    else:
        argv = [sys.executable, os.path.join(HERE, SCRIPTS[client]), workload, "--messages", str(n),
                "--loop", loop]
    return run_child_process(argv, env, timeout, n)


def _med(vals: list[Any]) -> float | None:
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def main(workload: str, n: int | None, repeat: int, loop: str, timeout: float, concs: list[int]) -> int:
    n = DEFAULT_N[workload] if n is None else n
    keys = [f"c{k}" for k in concs] if workload == "rpc" else [workload]
    runs: dict[str, dict[str, list[dict[str, Any] | None]]] = {k: {c: [] for c in ORDER} for k in keys}
    errors: dict[str, list[str]] = {}
    for rep in range(1, repeat + 1):
        for key in keys:
            conc = int(key[1:]) if workload == "rpc" else 0
            for c in ORDER:
                t0 = time.time()
                res, err = _run(c, workload, n, conc, loop, timeout)
                runs[key][c].append(res)
                if err:
                    errors.setdefault(c, []).append(f"rep {rep} {key}: {err}")
                status = (f"{res['rate']:>10,.0f}/s" if res else "") + (f" ERROR {err}" if err else "")
                print(f"[rep {rep}/{repeat}] {workload} {key} {c:<15} {status}  ({time.time() - t0:.1f}s)",
                      file=sys.stderr, flush=True)
    rates: dict[str, dict[str, float | None]] = {}
    cpu: dict[str, dict[str, float | None]] = {}
    vs_aio: dict[str, float | None] = {}
    vs_raw: dict[str, float | None] = {}
    head = ["run", "client", "N", "rate/s (median)", "min..max", "client CPU µs/msg", "ok"]
    rows = []
    for key, per in runs.items():
        rates[key], cpu[key] = {}, {}
        for c in ORDER:
            ok = [r for r in per[c] if r]
            rates[key][c] = _med([r["rate"] for r in ok])
            cpu[key][c] = _med([r["cpu_s"] / r["count"] * 1e6 for r in ok if r.get("cpu_s") is not None])
            rs = [r["rate"] for r in ok]
            spread = f"{min(rs):,.0f}..{max(rs):,.0f}" if len(rs) > 1 else ""
            rows.append([key, c, _fmt(n, ",d"), _fmt(rates[key][c]), spread, _fmt(cpu[key][c], ",.1f"),
                         f"{len(ok)}/{repeat}"])

        def ratio(a: str, b: str, per: dict[str, list[dict[str, Any] | None]] = per) -> float | None:
            return _med([ra["rate"] / rb["rate"] for ra, rb in zip(per[a], per[b], strict=True) if ra and rb])

        vs_aio[key], vs_raw[key] = ratio("aiopika_compat", "aio_pika"), ratio("aiopika_compat", "raw")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print(f"workload {workload} --level aiopika-compat (the aio-pika client code; aiopika_compat = same "
          f"code, import aio_pika -> mmate_fast.compat.aio_pika; loop {loop})")
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths,
                                                                                         strict=True))))
    for key in keys:
        print(f"{key}: aiopika_compat / aio_pika = {_fmt(vs_aio[key], '.2f')}    "
              f"aiopika_compat / raw = {_fmt(vs_raw[key], '.3f')}")
    for c, errs in errors.items():
        for e in errs:
            print(f"error {c}: {e}")
    single = workload != "rpc"
    obj: dict[str, Any] = {
        "workload": workload, "level": "aiopika-compat", "messages": n,
        "rates": rates[workload] if single else rates,
        "vs_aio_pika": vs_aio[workload] if single else vs_aio,
        "vs_raw": vs_raw[workload] if single else vs_raw,
        "cpu_us_per_msg": cpu[workload] if single else cpu}
    if errors:
        obj["errors"] = errors
    print(json.dumps(obj), flush=True)
    return 1 if errors else 0
