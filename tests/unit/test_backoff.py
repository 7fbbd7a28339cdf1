"""One exponential backoff (mmate_fast._backoff) behind reconnects, consumer restarts and retry
policies: the same delays for the same parameters, at any attempt number."""
from __future__ import annotations

import pytest

from mmate_fast import _backoff
from mmate_fast.amqp.robust import RecoveryPolicy
from mmate_fast.messaging.dispatcher import Dispatcher
from mmate_fast.messaging.subscriber import Subscriber
from mmate_fast.reliability.retry import ExponentialBackoff


@pytest.mark.parametrize("attempt", [1023, 1024, 1025, 1100, 5000, 10**9])
def test_recovery_delay_never_overflows(attempt: int) -> None:
    """A reconnect loop that has failed a thousand times (hours of outage at the 15 s cap) keeps its
    cap: the power of 2 no longer fits a float, but the delay does (it used to raise OverflowError
    and end the recovery task for good)."""
    policy = RecoveryPolicy()
    assert 0.0 <= policy.delay(attempt) <= policy.max_delay * (1 + policy.jitter)
    assert RecoveryPolicy(initial_delay=0.0, max_delay=0.0).delay(attempt) == 0.0
    assert ExponentialBackoff(0.1, 5.0, 2, 2**31, 0.0).delay(min(attempt, 2**31)) == 5.0


def test_one_formula_for_recovery_and_retry() -> None:
    for attempt in range(1, 40):
        expected = _backoff.exponential(attempt, 0.25, 15.0, 2.0)
        assert RecoveryPolicy(jitter=0.0).delay(attempt) == expected
        assert ExponentialBackoff(0.25, 15.0, 2.0, 100, 0.0).delay(attempt) == expected
    assert [_backoff.exponential(n, 0.1, 0.5) for n in (0, 1, 2, 3, 4, 5)] == [0.1, 0.1, 0.2, 0.4, 0.5, 0.5]


def test_jitter_bounds() -> None:
    assert _backoff.exponential(2, 1.0, 30.0, 2.0, 0.2, rng=lambda: 0.0) == pytest.approx(1.6)
    assert _backoff.exponential(2, 1.0, 30.0, 2.0, 0.2, rng=lambda: 0.5) == pytest.approx(2.0)
    assert _backoff.exponential(9, 1.0, 30.0, 2.0, 0.2, rng=lambda: 0.999999) == pytest.approx(36.0, rel=1e-5)


def test_recovery_defaults_are_written_once() -> None:
    """RecoveryPolicy's defaults are the consumer restart's default backoff (the subscriber cannot
    import the AMQP client for them)."""
    policy, rec = RecoveryPolicy(), _backoff.RECOVERY
    assert (policy.initial_delay, policy.max_delay, policy.multiplier, policy.jitter) == \
        (rec.initial, rec.maximum, rec.multiplier, rec.jitter)
    assert Subscriber(None, Dispatcher()).restart_delay == rec.delay
