"""What the fleet benchmark's workers share: the handler workloads and the tally each worker keeps.

Handlers: ``light`` does nothing with the decoded event (the cost is the client's); ``cpu1ms`` spends
1 ms of CPU per message (a busy loop on the thread's CPU clock), so it should scale with cores.

Tally: every worker counts the messages it handled, the wall time and its process CPU time at its
first and last one, and writes them every 50 ms to ``$BENCH_FLEET_DIR/<pid>.json`` (a thread; the
file replaced atomically). The harness (_fleet_bench.py) polls these files until all N messages are
handled: the rate is N / (last message anywhere - publish start), the client CPU the sum of each
worker's CPU between its first and last message.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable

HANDLERS = ("light", "cpu1ms")
CPU_SECONDS = 0.001
#: prefetch per worker, the same for every row (the Client's default of 10 is Go's; the benchmark
#: uses one value for all, set by the harness)
DEFAULT_PREFETCH = 100


def workload(kind: str) -> Callable[[], None]:
    """The handler body for ``kind`` (light | cpu1ms)."""
    if kind == "light":
        return lambda: None
    if kind == "cpu1ms":
        clock = time.thread_time

        def spin() -> None:
            end = clock() + CPU_SECONDS
            while clock() < end:
                pass

        return spin
    raise ValueError(f"unknown handler {kind!r} (light | cpu1ms)")


class Tally:
    """Messages handled by this worker, with wall/CPU time at the first and the last."""

    __slots__ = ("count", "cpu_first", "cpu_last", "extra", "first", "last", "path")

    def __init__(self, directory: str) -> None:
        self.count = 0
        self.first = self.last = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self.path = os.path.join(directory, f"{os.getpid()}.json")
        self.extra: dict[str, object] = {}

    def hit(self) -> None:
        """One message handled (call after the handler body)."""
        now = time.time()
        cpu = time.process_time()
        if not self.count:
            self.first, self.cpu_first = now, cpu
        self.count += 1
        self.last, self.cpu_last = now, cpu

    def write(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"count": self.count, "first": self.first, "last": self.last,
                       "cpu_s": self.cpu_last - self.cpu_first, **self.extra}, f)
        os.replace(tmp, self.path)

    def start_writer(self, interval: float = 0.05) -> None:
        """Write the tally every ``interval`` s from a daemon thread (and once more at each change)."""
        def loop() -> None:
            seen = -1
            while True:
                if self.count != seen:
                    seen = self.count
                    self.write()
                time.sleep(interval)

        threading.Thread(target=loop, name="bench-tally", daemon=True).start()


def tally_from_env() -> Tally:
    tally = Tally(os.environ["BENCH_FLEET_DIR"])
    tally.start_writer()
    return tally
