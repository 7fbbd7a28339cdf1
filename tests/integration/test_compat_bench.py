"""``benchmarks/run.py ... --level aiopika-compat`` runs end to end on the real broker with tiny
workloads: every row (raw, aio-pika, the same aio-pika code on the facade) finishes and the JSON has
the rates and ratios (the figures themselves are not asserted: tests do not assert speed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


@pytest.mark.parametrize(("workload", "extra"), [("consume", ["--messages", "500"]),
                                                 ("rpc", ["--messages", "100", "--concurrency", "8"])])
def test_aiopika_compat_level_runs(workload: str, extra: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), workload, "--level", "aiopika-compat",
                           "--timeout", "120", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    obj = json.loads(proc.stdout.strip().splitlines()[-1])
    assert obj["level"] == "aiopika-compat" and "errors" not in obj
    rates = obj["rates"] if workload != "rpc" else obj["rates"]["c8"]
    assert set(rates) == {"raw", "aio_pika", "aiopika_compat"} and all(r > 0 for r in rates.values())
    assert (obj["vs_aio_pika"] if workload != "rpc" else obj["vs_aio_pika"]["c8"]) > 0
