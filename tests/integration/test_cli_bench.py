"""``mmate bench`` on the real broker: the checkout's benchmarks/run.py with tiny workloads (publish,
and e2e for latency percentiles), as a subprocess; the PNG opens and the JSON holds the ratios.
No speed is asserted (the machine is shared): only that every client ran and reported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_workloads_and_writes_json_and_png(tmp_path: Path) -> None:
    import matplotlib.image

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mmate_fast.cli", "bench", "publish", "e2e", "--messages", "2000",
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    [json_path] = tmp_path.glob("bench-*.json")
    png_path = json_path.with_suffix(".png")
    assert proc.stdout.strip() == f"wrote {json_path} and {png_path}"
    doc = json.loads(json_path.read_text())
    for workload in ("publish", "e2e"):
        ratios = doc["ratios"][workload]
        assert ratios["vs_aio_pika"] > 0 and ratios["vs_raw"] > 0, doc
    publish, e2e = (r["result"] for r in doc["runs"])
    assert set(publish["rates"]) == {"raw", "mmate_fast", "aio_pika"} and all(publish["rates"].values())
    assert publish["extensions"] == {"mmate_fast": all(doc["compiled"].values())}
    assert {c: set(v) for c, v in e2e["latency_ms"].items()} == {c: {"p50", "p99"} for c in ("raw", "mmate_fast",
                                                                                           "aio_pika")}
    image = matplotlib.image.imread(png_path)
    assert image.ndim == 3 and min(image.shape[:2]) > 300
