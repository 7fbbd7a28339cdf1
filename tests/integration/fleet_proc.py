"""A ``mmate run`` fleet in a subprocess for the fleet tests: its log lines collected as they come,
waits on them, its worker pids, and a stop that never leaves a process behind."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
# The fleet tests' service (tests/integration/fleet_app.py) and the line each worker logs when ready.
TARGET = "tests.integration.fleet_app:make"
READY = r"\[mmate run\] .*worker \d+ \(pid \d+\) ready"


class FleetProcess:
    """``python -m mmate_fast.cli run ARGS`` started in the repository root (so ``tests.…`` imports)."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> None:
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "mmate_fast.cli", "run", *args], cwd=cwd,
                                     env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def matching(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        with self._cond:
            return [line for line in self.lines if rx.search(line)]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Until ``count`` log lines match ``pattern``; AssertionError with the log after ``timeout``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self.lines if rx.search(line)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {count} line(s) matching {pattern!r} in the fleet's log "
                                         f"(exit code {self.proc.poll()}):\n" + "\n".join(self.lines[-60:]))
                self._cond.wait(min(left, 0.2))

    def worker_pids(self) -> list[int]:
        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            self.kill()
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """Kill the supervisor and its workers if still running (test teardown)."""
        workers = self.worker_pids()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
