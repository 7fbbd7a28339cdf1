"""``benchmarks/run.py stageflow`` runs end to end on the real broker with a few flows: every row
completes its flows, leaves nothing in its queues and deletes them (the figures themselves are not
asserted: tests do not assert speed)."""
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


def _rows() -> str:
    sys.path.insert(0, str(BENCH))
    try:
        import _flow_runner

        return ",".join(_flow_runner.default_only())
    finally:
        sys.path.remove(str(BENCH))


def test_every_row_completes_a_few_flows() -> None:
    rows = _rows()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "stageflow", "--flows", "40", "--only", rows,
                           "--inflight", "8", "--timeout", "60"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    obj = json.loads(proc.stdout.strip().splitlines()[-1])
    assert obj["workload"] == "stageflow" and "errors" not in obj
    assert set(obj["rates"]) == set(rows.split(","))
    assert all(rate and rate > 0 for rate in obj["rates"].values())
