"""The autoscaler's decision: how many workers, from the queue depth and the consumer lag.

Every ``interval`` seconds the supervisor samples the messages ready in the queues the workers consume
(passive ``queue.declare``) and the rate the fleet acked them at since the last sample (the workers
report their counts). The consumer lag is ``ready / rate``: the seconds the fleet needs to clear what
waits. Like Celery's autoscaler it grows fast and shrinks slowly, with hysteresis so a fleet near its
capacity does not flap:

- **grow** by one worker when, for ``up_samples`` samples in a row, more than ``up_backlog``
  messages wait *and* the lag is over ``up_lag`` seconds (a backlog the fleet clears quickly is no
  reason to start a process);
- **shrink** by one worker when, for ``down_samples`` samples in a row, at most ``down_backlog``
  messages wait and the workers left would still have headroom: the acked rate is below
  ``headroom`` x the capacity of one worker fewer (a worker's capacity is the highest acked rate per
  worker seen while a backlog waited; unknown until then, and then an empty queue is enough);
- nothing changes for ``cooldown`` seconds after a change (the new worker needs time to start and
  take load; a removed one to drain), and never outside ``minimum..maximum``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mmate_fast import errors


@dataclass(frozen=True)
class ScalePolicy:
    """Bounds and thresholds of the autoscaler (see the module docstring)."""

    minimum: int
    maximum: int
    interval: float = 1.0
    up_backlog: int = 100
    up_lag: float = 2.0
    up_samples: int = 2
    down_backlog: int = 0
    down_samples: int = 10
    headroom: float = 0.7
    cooldown: float = 5.0

    def __post_init__(self) -> None:
        if type(self.minimum) is not int or type(self.maximum) is not int or not \
                1 <= self.minimum <= self.maximum:
            raise errors.ConfigurationError(
                f"autoscale bounds must be whole numbers 1 <= MIN <= MAX, got "
                f"{self.minimum!r},{self.maximum!r}")
        if min(self.up_samples, self.down_samples) < 1 or min(self.up_backlog, self.down_backlog) < 0 \
                or self.down_backlog >= max(1, self.up_backlog):
            raise errors.ConfigurationError(
                "autoscale: up_samples/down_samples >= 1 and 0 <= down_backlog < up_backlog "
                "(the gap is the hysteresis)")
        if not self.interval > 0 or self.up_lag < 0 or self.cooldown < 0 or not 0 < self.headroom <= 1:
            raise errors.ConfigurationError("autoscale: interval > 0, up_lag and cooldown >= 0, "
                                            "0 < headroom <= 1")


def parse_bounds(text: str) -> tuple[int, int]:
    """``"MIN,MAX"`` (or ``"MAX"``: from 1) -> (MIN, MAX); ConfigurationError for anything else."""
    parts = [p.strip() for p in text.split(",")]
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) == 1:
        nums = [1, nums[0]]
    if len(nums) != 2 or not 1 <= nums[0] <= nums[1]:
        raise errors.ConfigurationError(
            f"--autoscale takes MIN,MAX with 1 <= MIN <= MAX (e.g. 1,4), got {text!r}")
    return nums[0], nums[1]


@dataclass(frozen=True)
class Sample:
    """One observation: messages ready in the watched queues, the fleet's acked rate (messages/s)
    since the previous sample, and how many workers are running."""

    ready: int
    rate: float
    workers: int

    @property
    def lag(self) -> float:
        """Seconds to clear ``ready`` at ``rate`` (infinite when messages wait and nothing is acked)."""
        if self.ready <= 0:
            return 0.0
        return self.ready / self.rate if self.rate > 0 else math.inf


class Scaler:
    """Feed it samples (:meth:`decide`); it answers the number of workers the fleet should run and
    says why (:attr:`reason`)."""

    def __init__(self, policy: ScalePolicy) -> None:
        self.policy = policy
        self._busy = 0
        self._idle = 0
        self._last_change = -math.inf
        #: highest acked rate per worker seen while a backlog waited (messages/s), 0 until then
        self.capacity = 0.0
        self.reason = ""

    def decide(self, sample: Sample, now: float) -> int:
        """The worker count wanted after ``sample`` (taken at ``now``, monotonic seconds)."""
        p = self.policy
        workers = sample.workers
        if sample.ready > p.up_backlog and sample.workers > 0:
            self.capacity = max(self.capacity, sample.rate / sample.workers)
        busy = sample.ready > p.up_backlog and sample.lag > p.up_lag
        idle = sample.ready <= p.down_backlog and (
            self.capacity == 0 or workers <= 1 or sample.rate < p.headroom * self.capacity * (workers - 1))
        self._busy = self._busy + 1 if busy else 0
        self._idle = self._idle + 1 if idle else 0
        self.reason = ""
        if workers < p.minimum or workers > p.maximum:
            self.reason = f"keep within {p.minimum}..{p.maximum}"
            return min(max(workers, p.minimum), p.maximum)
        if now - self._last_change < p.cooldown:
            return workers
        if self._busy >= p.up_samples and workers < p.maximum:
            self.reason = (f"{sample.ready} ready, lag {sample.lag:.1f} s > {p.up_lag:g} s "
                           f"for {self._busy} samples")
            return self._changed(workers + 1, now)
        if self._idle >= p.down_samples and workers > p.minimum:
            self.reason = (f"{sample.ready} ready, {sample.rate:.0f} msg/s for {self._idle} samples: "
                           f"{workers - 1} worker(s) suffice")
            return self._changed(workers - 1, now)
        return workers

    def _changed(self, workers: int, now: float) -> int:
        self._last_change = now
        self._busy = self._idle = 0
        return workers


__all__ = ["Sample", "ScalePolicy", "Scaler", "parse_bounds"]
