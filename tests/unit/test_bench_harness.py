"""The benchmark harness keeps its promises (benchmarks/): the aio-pika runner at the Mmate level
sends exactly our envelope bytes, a run that leaves messages in its queue fails, and every result of
ours says whether the compiled extensions ran. No broker: the client runs themselves are in
benchmarks/run.py."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit._impls import NO_EXT

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def common() -> Iterator[ModuleType]:
    """benchmarks/_common.py, imported the way the runners import it (their folder on sys.path)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("_common")
    finally:
        sys.path.remove(str(BENCH))


def _child(result: dict[str, object]) -> list[str]:
    """argv of a client process that prints ``result`` as its JSON line."""
    return [sys.executable, "-c", f"import json; print(json.dumps({result!r}))"]


def test_aio_pika_sends_exactly_our_envelope_bytes() -> None:
    env = {**os.environ, "BENCH_BODY": "mmate"}
    proc = subprocess.run([sys.executable, "-c", "import _aiopika_mmate as a; a.check_same_bytes()"],
                          cwd=BENCH, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_run_that_leaves_messages_in_its_queue_fails(common: ModuleType) -> None:
    done = {"count": 100, "elapsed_s": 1.0, "rate": 100.0, "left_in_queue": 0}
    res, err = common.run_child_process(_child(done), os.environ, 30, 100)
    assert res == done and err is None
    res, err = common.run_child_process(_child({**done, "left_in_queue": 7}), os.environ, 30, 100)
    assert res is not None and res["rate"] == 100.0  # the figures are kept, the run fails
    assert err is not None and "left 7 message(s) in its queue" in err


def test_our_results_say_whether_the_extensions_ran(common: ModuleType) -> None:
    importlib.import_module("mmate_fast.amqp")  # loads the frame codec and the channel pool
    ext = common.extensions_in_use()
    assert ext is not None and ext["modules"]
    assert ext["compiled"] is (not NO_EXT)
    runs = {"mmate_fast": [{"extensions": ext}, None], "aio_pika": [{"rate": 1.0}]}
    assert common.extensions_summary(runs) == {"mmate_fast": not NO_EXT}
    assert "PURE-PYTHON" in common.extensions_line({"mmate_fast": False})
    assert json.loads(json.dumps(ext)) == ext  # goes into the JSON line as it is
