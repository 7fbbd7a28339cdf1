"""The fleet benchmark's harness pieces (benchmarks/_fleet_runner.py, _fleet_common.py), without a broker:
the summary (rates, per-repetition ratios, scaling, the JSON), the workers' tally files, run.py's
argument checks."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[tuple[ModuleType, ModuleType]]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("_fleet_runner"), importlib.import_module("_fleet_common")
    finally:
        sys.path.remove(str(BENCH))


def _run(rate: float, count: int = 1000, cpu_s: float = 0.01) -> dict[str, object]:
    return {"rate": rate, "count": count, "cpu_s": cpu_s, "broker_cpu_s": 0.05, "startup_s": 1.0,
            "extensions": {"compiled": True}}


def test_summary_ratios_are_per_repetition_and_scaling_is_against_the_first_worker_count(
        bench: tuple[ModuleType, ModuleType]) -> None:
    runner, _ = bench
    runs = {
        ("light", 1, "raw"): [_run(1000), _run(2000)],
        ("light", 1, "mmate_fast"): [_run(500), _run(1500)],
        ("light", 1, "aio_pika"): [_run(100), _run(300)],
        ("light", 2, "raw"): [_run(1000), _run(2000)],
        ("light", 2, "mmate_fast"): [_run(1000), _run(3000)],
        ("light", 2, "aio_pika"): [None, _run(600)],
    }
    s = runner.summarize([1, 2], ["light"], ["raw", "mmate_fast", "aio_pika"], runs,
                         {"aio_pika": ["light W=2 aio_pika: rep 1: boom"]})
    obj = s["json"]
    assert obj["rates"]["light"]["1"] == {"raw": 1500.0, "mmate_fast": 1000.0, "aio_pika": 200.0}
    # medians of per-repetition ratios: (0.5, 0.75) -> 0.625, not 1000 / 1500
    assert obj["vs_raw"]["light"]["1"] == pytest.approx(0.625)
    assert obj["vs_aio_pika"]["light"]["1"] == pytest.approx(5.0)
    assert obj["vs_aio_pika"]["light"]["2"] == pytest.approx(5.0)  # only the repetition both ran
    assert obj["scaling"]["light"]["mmate_fast"] == {"1": 1.0, "2": pytest.approx(2.0)}
    assert obj["cpu_us_per_msg"]["light"]["1"]["raw"] == pytest.approx(10.0)
    assert obj["extensions"] == {"mmate_fast": True}
    assert obj["errors"] == {"aio_pika": ["light W=2 aio_pika: rep 1: boom"]}
    table = s["table"]
    assert "light: mmate_fast / raw = W=1 0.62, W=2 1.25" in table
    assert "1/2 ERR" in table  # the failed aio-pika repetition is visible
    json.dumps(obj)  # serialisable as the last line


def test_tally_files_say_count_first_last_and_cpu(tmp_path: Path, bench: tuple[ModuleType, ModuleType]) -> None:
    _, common = bench
    tally = common.Tally(str(tmp_path))
    tally.write()
    assert json.loads(Path(tally.path).read_text())["count"] == 0
    for _ in range(3):
        tally.hit()
    tally.write()
    data = json.loads(Path(tally.path).read_text())
    assert data["count"] == 3 and data["last"] >= data["first"] > 0 and data["cpu_s"] >= 0
    assert common.workload("light")() is None
    with pytest.raises(ValueError, match="unknown handler"):
        common.workload("heavy")


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--handler", "slow"], ["--only", "pika"],
                                  ["--repeat", "0"]])
def test_run_py_fleet_refuses_bad_arguments(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "run.py", "fleet", *argv], cwd=BENCH, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "fleet: --workers" in proc.stderr
