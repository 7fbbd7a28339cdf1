"""Exponential backoff, written once: reconnects, channel reopens and consumer restarts
(``RecoveryPolicy``), retry policies (``ExponentialBackoff``) and the bridge's resubscribe all wait
``initial·multiplier^(attempt-1)``, capped, with jitter, as computed here.

Below every layer that waits between attempts (the AMQP client is the lowest), so each may use it.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


def exponential(attempt: int, initial: float, maximum: float, multiplier: float = 2.0,
                jitter: float = 0.0, rng: Callable[[], float] = random.random) -> float:
    """Seconds before attempt ``attempt`` (1 waits ``initial``; below 1 counts as 1):
    ``initial·multiplier^(attempt-1)`` capped at ``maximum``, then x U(1-jitter, 1+jitter) drawn with
    ``rng`` (uniform in [0, 1)); never negative. Any attempt number works: a long outage counts past
    the point where the power no longer fits a float (it is then the cap)."""
    try:
        delay = initial * float(multiplier) ** max(0, attempt - 1)
    except OverflowError:
        delay = maximum if initial > 0 else 0.0
    delay = min(delay, maximum)
    if jitter:
        delay *= 1.0 + jitter * (2.0 * rng() - 1.0)
    return max(0.0, delay)


@dataclass(frozen=True, slots=True)
class Backoff:
    """An exponential backoff schedule: :meth:`delay` of attempt n as :func:`exponential`."""

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.0

    def delay(self, attempt: int) -> float:
        return exponential(attempt, self.initial, self.maximum, self.multiplier, self.jitter)


#: how reconnects, channel reopens and consumer restarts pace themselves by default (the defaults of
#: ``RecoveryPolicy``): 0.25 s doubling up to 15 s, +-20 %
RECOVERY = Backoff(initial=0.25, maximum=15.0, multiplier=2.0, jitter=0.2)

__all__ = ["RECOVERY", "Backoff", "exponential"]
