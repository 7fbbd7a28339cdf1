"""Instruction counts of a fresh Python process under callgrind (repeatable whatever else the
machine is doing): the benchmarks' ``--callgrind`` / ``--instructions`` modes run their own script
as that child this way."""
from __future__ import annotations

import re
import subprocess
import sys


def callgrind_total(script: str, *args: str) -> int:
    """Callgrind's total instruction count of ``python script args...`` (raises if it has none)."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, script, *args],
        capture_output=True, text=True, check=True)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise RuntimeError(f"no callgrind total in: {out.stderr[-500:]}")
    return int(m.group(1))
