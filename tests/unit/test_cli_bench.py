"""``mmate bench`` without a broker: a stand-in ``run.py`` (``--benchmarks DIR``) prints the result
shapes of the real one (per-client rates and ratios; rpc per concurrency; latency percentiles), so
the orchestration, the JSON document and the PNG are checked here; the real workloads run in
tests/integration/test_cli_bench.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mmate_fast.cli._bench_plot import panels, plot
from mmate_fast.cli.bench import find_runner, summary_line

ROOT = Path(__file__).resolve().parents[2]

PUBLISH = {"workload": "publish", "messages": 100, "rates": {"raw": 60000.0, "mmate_fast": 58000.0,
                                                             "aio_pika": 14000.0},
           "vs_aio_pika": 4.14, "vs_raw": 0.97, "extensions": {"mmate_fast": True}}
E2E = {**PUBLISH, "workload": "e2e", "latency_ms": {"raw": {"p50": 1.0, "p99": 3.0},
                                                    "mmate_fast": {"p50": 1.5, "p99": 4.0},
                                                    "aio_pika": {"p50": 9.0, "p99": None}}}
RPC = {"workload": "rpc", "messages": 100, "rates": {"c1": {"mmate_fast": 4000.0, "aio_pika": 1500.0, "raw": 4500.0},
                                                     "c64": {"mmate_fast": 30000.0, "aio_pika": 6000.0}},
       "vs_aio_pika": {"c1": 2.67, "c64": 5.0}, "vs_raw": {"c1": 0.89, "c64": None},
       "latency_ms": {"c1": {"mmate_fast": {"p50": 0.2, "p99": 0.5}}, "c64": {}}}

FAKE_RUN = '''
import json, sys
results = json.loads(%r)
workload = sys.argv[1]
print("[rep 1/1] " + workload + " raw  ok", file=sys.stderr)
if workload == "consume":
    print("client failed", file=sys.stderr)
    sys.exit(1)
print("table line")
print(json.dumps(dict(results[workload], argv=sys.argv[1:])))
'''


@pytest.fixture
def fake_benchmarks(tmp_path: Path) -> Path:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "run.py").write_text(FAKE_RUN % json.dumps({"publish": PUBLISH, "e2e": E2E, "rpc": RPC}))
    return folder


def bench(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mmate_fast.cli", "bench", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_runs_each_workload_and_writes_json_and_png(fake_benchmarks: Path, tmp_path: Path) -> None:
    import matplotlib.image

    out = tmp_path / "out"
    proc = bench("publish", "e2e", "rpc", "--repeat", "3", "--messages", "100", "--level", "mmate",
                 "--benchmarks", str(fake_benchmarks), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    json_path, png_path = Path(doc["json_path"]), Path(doc["png_path"])
    assert json_path.parent == out and json_path.name.startswith("bench-") and png_path == json_path.with_suffix(".png")
    assert json.loads(json_path.read_text()) == doc
    assert [r["workload"] for r in doc["runs"]] == ["publish", "e2e", "rpc"]
    # run.py got the options, and its last line is the result
    assert doc["runs"][0]["result"]["argv"] == ["publish", "--repeat", "3", "--timeout", "300", "--messages", "100",
                                                "--level", "mmate"]
    assert doc["ratios"]["publish"] == {"vs_aio_pika": 4.14, "vs_raw": 0.97}
    assert doc["ratios"]["rpc"] == {"vs_aio_pika": {"c1": 2.67, "c64": 5.0}, "vs_raw": {"c1": 0.89, "c64": None}}
    assert all(r["error"] is None and r["exit_code"] == 0 for r in doc["runs"])
    image = matplotlib.image.imread(png_path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 900  # 4 panels wide, 2 rows
    assert "publish: raw 60,000/s, mmate_fast 58,000/s, aio_pika 14,000/s; vs aio-pika 4.14x" in proc.stderr


def test_a_failed_workload_is_recorded_and_fails_the_command(fake_benchmarks: Path, tmp_path: Path) -> None:
    proc = bench("consume", "publish", "--benchmarks", str(fake_benchmarks), "--out", str(tmp_path), "--no-plot")
    assert proc.returncode == 1
    assert "mmate bench: error: workload consume: run.py exit 1: client failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    [written] = tmp_path.glob("bench-*.json")
    doc = json.loads(written.read_text())
    consume, publish = doc["runs"]
    assert consume["result"] is None and consume["exit_code"] == 1 and publish["error"] is None
    assert not list(tmp_path.glob("*.png")) and proc.stdout.strip() == f"wrote {written}"


def test_without_benchmarks_it_says_where_they_are(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not of the installed package"):
        find_runner_missing()
    proc = bench("publish", "--benchmarks", str(tmp_path))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("mmate bench: error: ") and "--benchmarks takes the benchmarks folder" in proc.stderr


def find_runner_missing() -> Path:
    """find_runner with the checkout's folder pointed somewhere empty (as in an installed wheel)."""
    from mmate_fast.cli import bench as module

    saved = module.CHECKOUT_BENCHMARKS
    module.CHECKOUT_BENCHMARKS = Path("/nonexistent/benchmarks")
    try:
        return find_runner(None)
    finally:
        module.CHECKOUT_BENCHMARKS = saved


def test_the_checkout_runner_is_found() -> None:
    assert find_runner(None) == ROOT / "benchmarks" / "run.py"


@pytest.mark.parametrize("argv", [["nope"], ["publish", "--repeat", "0"], []])
def test_bad_use_exits_2(argv: list[str]) -> None:
    proc = bench(*argv)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_panels_rpc_per_concurrency_and_latency_only_where_reported() -> None:
    runs: list[dict[str, Any]] = [{"workload": "publish", "result": PUBLISH}, {"workload": "e2e", "result": E2E},
                                  {"workload": "rpc", "result": RPC}, {"workload": "consume", "result": None}]
    got = panels(runs)
    assert [p.title for p in got] == ["publish", "e2e", "rpc c1", "rpc c64"]
    assert got[0].latency == {} and got[0].ratios == "4.14x aio-pika, 0.97 of raw"
    assert got[1].latency["aio_pika"] == {"p50": 9.0}  # a missing percentile is left out
    assert got[3].rates == {"mmate_fast": 30000.0, "aio_pika": 6000.0} and got[3].ratios == "5.00x aio-pika"
    assert summary_line({"workload": "rpc", "result": RPC, "error": None}) == (
        "rpc: c1 ours 4,000/s vs aio-pika 2.67x; c64 ours 30,000/s vs aio-pika 5.00x")


def test_plot_refuses_nothing_to_plot(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no workload produced a result"):
        plot([{"workload": "publish", "result": None}], tmp_path / "x.png", "t")
