"""Retry policies, the retryable opt-out and the in-process RetryInterceptor (no broker)."""
from __future__ import annotations

from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.messaging.pipeline import ConsumeContext, Pipeline
from mmate_fast.reliability.retry import (
    ExponentialBackoff,
    FixedDelay,
    LinearBackoff,
    RetryInterceptor,
    is_retryable,
    retry_call,
)
from mmate_fast.reliability.scheduling import ceil_significant, seconds_until
from mmate_fast.reliability.ttl_retry import attempts_done, ceil_r10, delay_queue_name


def test_exponential_without_jitter_doubles_and_caps() -> None:
    p = ExponentialBackoff(0.1, 0.5, 2.0, max_retries=5, jitter=0.0)
    assert [p.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.5, 0.5, None]
    assert p.delay(0) is None


def test_exponential_jitter_bounds() -> None:
    lo = ExponentialBackoff(1.0, 30.0, 2.0, 3, 0.15, rng=lambda: 0.0)
    hi = ExponentialBackoff(1.0, 30.0, 2.0, 3, 0.15, rng=lambda: 0.999999)
    assert lo.delay(2) == pytest.approx(1.7)
    assert hi.delay(2) == pytest.approx(2.3, rel=1e-5)


def test_go_default_policy() -> None:
    p = ExponentialBackoff()
    assert (p.initial, p.max, p.multiplier, p.max_retries, p.jitter) == (0.1, 30.0, 2.0, 3, 0.15)


def test_linear_and_fixed() -> None:
    assert [LinearBackoff(1, 0.5, 2, 4).delay(n) for n in range(1, 6)] == [1, 1.5, 2, 2, None]
    assert [FixedDelay(0.2, 2).delay(n) for n in range(1, 4)] == [0.2, 0.2, None]


@pytest.mark.parametrize("bad", [dict(initial=-1), dict(multiplier=0.5), dict(jitter=1.0), dict(max_retries=-1)])
def test_bad_policy_arguments(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ExponentialBackoff(**bad)


class Permanent(Exception):
    retryable = False


class GoStyle(Exception):
    def is_retryable(self) -> bool:
        return False


def test_retryable_opt_out() -> None:
    assert is_retryable(ValueError())
    assert not is_retryable(Permanent())
    assert not is_retryable(GoStyle())
    assert not is_retryable(ValueError(), lambda e: not isinstance(e, ValueError))
    assert not FixedDelay(0, 3, retry_on=lambda e: isinstance(e, KeyError)).should_retry(ValueError())


async def test_retry_call_retries_then_succeeds_and_gives_up() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ValueError(calls)
        return "ok"

    assert await retry_call(FixedDelay(0.5, 3), flaky, sleep=sleep) == "ok"
    assert calls == 3 and waits == [0.5, 0.5]

    async def always() -> None:
        raise ValueError("no")

    waits.clear()
    with pytest.raises(ValueError, match="no"):
        await retry_call(FixedDelay(0.1, 2), always, sleep=sleep)
    assert waits == [0.1, 0.1]

    async def permanent() -> None:
        raise Permanent()

    waits.clear()
    with pytest.raises(Permanent):
        await retry_call(FixedDelay(0.1, 2), permanent, sleep=sleep)
    assert waits == []


async def test_retry_interceptor_reruns_handler() -> None:
    async def sleep(s: float) -> None:
        return None

    interceptor = RetryInterceptor(FixedDelay(0.01, 3), sleep=sleep)
    pipeline = Pipeline([interceptor])
    runs: list[int] = []

    async def handler() -> str:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("boom")
        return "done"

    ctx = ConsumeContext(None, None, None, "q", None, None)
    assert await pipeline.consume(ctx, handler) == "done"
    assert runs == [0, 1, 2] and interceptor.retries == 2 and ctx.items["retry-attempt"] == 2


def test_attempt_counting_and_names() -> None:
    assert attempts_done(None, "q") == 0
    assert attempts_done({"x-mmate-attempt": 2}, "q") == 2
    assert attempts_done({"x-mmate-attempt": "3"}, "q") == 3
    deaths = [{"queue": "q.retry.100ms", "reason": "expired", "count": 2},
              {"queue": "q.retry.200ms", "reason": "expired", "count": 1},
              {"queue": "other", "reason": "rejected", "count": 5}]
    assert attempts_done({"x-death": deaths}, "q") == 3
    assert attempts_done({"x-death": deaths, "x-mmate-attempt": 4}, "q") == 4
    assert delay_queue_name("orders", 250) == "orders.retry.250ms"


def test_rounding_never_shortens() -> None:
    for ms in (1, 9, 11, 57, 99, 101, 999, 1001, 4999, 123456):
        assert ceil_r10(ms) >= ms and ceil_r10(ms) <= ms * 1.3
        assert ms <= ceil_significant(ms) <= ms * 1.01 + 1
    assert ceil_significant(12345) == 12400 and ceil_significant(300) == 300


def test_seconds_until_floors_at_zero() -> None:
    from datetime import UTC, datetime

    assert seconds_until(datetime(2000, 1, 1, tzinfo=UTC)) == 0.0
    assert seconds_until(datetime(2000, 1, 1, 0, 0, 10), now=datetime(2000, 1, 1, tzinfo=UTC).timestamp()) == 10


def test_errors_are_named() -> None:
    assert errors.CircuitOpenError("x").reason == "circuit-open"
    assert issubclass(errors.SchedulingError, errors.MmateError)
