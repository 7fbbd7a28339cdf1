"""The autoscaler's decision (mmate_fast.fleet._scaler): grow on a backlog the fleet cannot clear
quickly, shrink slowly when idle, hysteresis, cooldown, bounds."""
from __future__ import annotations

import math

import pytest

from mmate_fast import errors
from mmate_fast.fleet import Sample, ScalePolicy, Scaler, parse_bounds


def run(scaler: Scaler, samples: list[tuple[int, float, int]], start: float = 100.0,
        step: float = 1.0) -> list[int]:
    """Feed (ready, rate, workers) samples one ``step`` apart; the answers."""
    return [scaler.decide(Sample(r, rate, w), start + i * step) for i, (r, rate, w) in enumerate(samples)]


def policy(**kw: object) -> ScalePolicy:
    base: dict[str, object] = {"minimum": 1, "maximum": 4, "up_backlog": 100, "up_lag": 2.0, "up_samples": 2,
                               "down_samples": 3, "cooldown": 0.0}
    base.update(kw)
    return ScalePolicy(**base)  # type: ignore[arg-type]


def test_lag_is_ready_over_rate() -> None:
    assert Sample(0, 0.0, 1).lag == 0.0
    assert Sample(500, 100.0, 1).lag == 5.0
    assert Sample(5, 0.0, 1).lag == math.inf


def test_a_backlog_that_lasts_grows_by_one_per_decision() -> None:
    s = Scaler(policy())
    assert run(s, [(1000, 100.0, 1), (1000, 100.0, 1)]) == [1, 2]
    assert "lag 10.0 s" in s.reason
    # counting starts again after a change
    assert run(s, [(900, 150.0, 2), (900, 150.0, 2)], start=200) == [2, 3]


def test_one_busy_sample_is_not_enough() -> None:
    s = Scaler(policy())
    assert run(s, [(1000, 100.0, 1), (0, 100.0, 1), (1000, 100.0, 1), (50, 100.0, 1)]) == [1, 1, 1, 1]


def test_a_backlog_cleared_quickly_is_no_reason_to_grow() -> None:
    s = Scaler(policy())
    # 1000 ready but acked at 2000/s: half a second of lag, under up_lag
    assert run(s, [(1000, 2000.0, 2)] * 5) == [2] * 5
    # a few ready with no ack at all: under up_backlog
    assert run(s, [(50, 0.0, 2)] * 5) == [2] * 5


def test_never_past_maximum_and_never_below_minimum() -> None:
    s = Scaler(policy(maximum=2))
    assert run(s, [(10_000, 10.0, 2)] * 6) == [2] * 6
    s = Scaler(policy(minimum=2))
    assert run(s, [(0, 0.0, 2)] * 6) == [2] * 6
    # out of bounds (e.g. workers crashed): back within them at once
    assert Scaler(policy(minimum=2)).decide(Sample(0, 0.0, 1), 0.0) == 2
    assert Scaler(policy(maximum=3)).decide(Sample(0, 0.0, 5), 0.0) == 3


def test_an_idle_queue_shrinks_after_down_samples() -> None:
    s = Scaler(policy())
    assert run(s, [(0, 0.0, 3)] * 3) == [3, 3, 2]
    assert "2 worker(s) suffice" in s.reason
    assert run(s, [(0, 0.0, 2)] * 3, start=200) == [2, 2, 1]


def test_hysteresis_a_fleet_that_keeps_up_near_capacity_does_not_shrink() -> None:
    s = Scaler(policy())
    # under a backlog, 2 workers acked 1000/s: 500/s per worker is the capacity seen
    run(s, [(5000, 1000.0, 2)])
    assert s.capacity == 500.0
    # the queue is empty but the fleet acks 450/s: 1 worker (500/s x 0.7 headroom) would not keep up
    assert run(s, [(0, 450.0, 2)] * 10, start=200) == [2] * 10
    # the load drops to 200/s: one worker fewer has room
    assert run(s, [(0, 200.0, 2)] * 3, start=300) == [2, 2, 1]


def test_a_sample_between_the_thresholds_resets_both_counts() -> None:
    s = Scaler(policy(down_backlog=10))
    # 50 ready: not idle (> down_backlog), not busy (< up_backlog): the idle run starts again
    assert run(s, [(0, 0.0, 3), (0, 0.0, 3), (50, 0.0, 3), (0, 0.0, 3), (0, 0.0, 3), (0, 0.0, 3)]) == \
        [3, 3, 3, 3, 3, 2]


def test_cooldown_after_a_change() -> None:
    s = Scaler(policy(cooldown=5.0))
    assert run(s, [(1000, 10.0, 1)] * 2) == [1, 2]
    # still busy, but within 5 s of the change: wait
    assert run(s, [(1000, 10.0, 2)] * 4, start=102) == [2, 2, 2, 2]
    assert s.decide(Sample(1000, 10.0, 2), 107.0) == 3


@pytest.mark.parametrize("kw", [{"minimum": 0}, {"minimum": 3, "maximum": 2}, {"up_samples": 0},
                                {"down_backlog": 100}, {"interval": 0}, {"headroom": 0}, {"headroom": 1.5},
                                {"minimum": 1.5}])
def test_bad_policies_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(errors.ConfigurationError):
        policy(**kw)


@pytest.mark.parametrize(("text", "bounds"), [("1,4", (1, 4)), ("2, 2", (2, 2)), ("3", (1, 3))])
def test_parse_bounds(text: str, bounds: tuple[int, int]) -> None:
    assert parse_bounds(text) == bounds


@pytest.mark.parametrize("text", ["", "0,2", "3,2", "a,b", "1,2,3", "-1,2"])
def test_parse_bounds_refuses(text: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="MIN,MAX"):
        parse_bounds(text)
