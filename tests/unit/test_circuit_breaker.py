"""Circuit breaker states, thresholds, listeners and the two interceptors, on a fake clock."""
from __future__ import annotations

from typing import Any

import pytest

from mmate_fast.errors import CircuitOpenError
from mmate_fast.messaging.pipeline import ConsumeContext, Pipeline, PublishContext
from mmate_fast.reliability.circuit_breaker import (
    CircuitBreaker,
    HandlerCircuitBreakerInterceptor,
    PublishCircuitBreakerInterceptor,
    State,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _fail(b: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        b.acquire()
        b.record_failure(RuntimeError("x"))


def test_opens_after_threshold_and_fails_fast() -> None:
    clock = Clock()
    changes: list[tuple[State, State]] = []
    b = CircuitBreaker(3, 10.0, clock=clock)
    b.add_listener(lambda br, old, new: changes.append((old, new)))
    _fail(b, 2)
    assert b.state is State.CLOSED
    b.acquire()
    b.record_success()          # a success resets the consecutive count
    _fail(b, 2)
    assert b.state is State.CLOSED
    _fail(b)
    assert b.state is State.OPEN and changes == [(State.CLOSED, State.OPEN)]
    clock.now += 4
    with pytest.raises(CircuitOpenError) as info:
        b.acquire()
    assert info.value.retry_after == pytest.approx(6.0) and b.rejected == 1


def test_half_open_limits_trials_and_closes_after_successes() -> None:
    clock = Clock()
    b = CircuitBreaker(1, 5.0, half_open_max_calls=2, success_threshold=2, clock=clock)
    _fail(b)
    clock.now += 5
    assert b.state is State.HALF_OPEN
    b.acquire()
    b.acquire()
    with pytest.raises(CircuitOpenError):
        b.acquire()             # only two trials at a time
    b.record_success()
    assert b.state is State.HALF_OPEN
    b.record_success()
    assert b.state is State.CLOSED and b.failures == 0


def test_half_open_failure_reopens() -> None:
    clock = Clock()
    seen: list[str] = []
    b = CircuitBreaker(1, 5.0, clock=clock)
    b.add_listener(lambda br, old, new: seen.append(new.value))
    _fail(b)
    clock.now += 5
    _fail(b)
    assert b.state is State.OPEN and seen == ["open", "half-open", "open"]
    clock.now += 4.9
    assert b.state is State.OPEN


def test_is_failure_filter_and_context_manager() -> None:
    b = CircuitBreaker(1, 5.0, is_failure=lambda e: not isinstance(e, KeyError), clock=Clock())
    with pytest.raises(KeyError), b:
        raise KeyError("ignored")
    assert b.state is State.CLOSED
    with pytest.raises(ValueError), b:
        raise ValueError("counts")
    assert b.state is State.OPEN
    b.reset()
    assert b.state is State.CLOSED
    b.trip()
    assert b.state is State.OPEN


async def test_call_wraps_coroutines() -> None:
    b = CircuitBreaker(2, 1.0, clock=Clock())

    async def bad() -> None:
        raise RuntimeError("down")

    async def good(x: int) -> int:
        return x * 2

    assert await b.call(good, 21) == 42
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await b.call(bad)
    with pytest.raises(CircuitOpenError):
        await b.call(good, 1)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0)
    with pytest.raises(ValueError):
        CircuitBreaker(1, -1)


async def test_publish_interceptor() -> None:
    clock = Clock()
    b = CircuitBreaker(2, 5.0, clock=clock)
    pipeline = Pipeline([PublishCircuitBreakerInterceptor(b)])
    sent: list[Any] = []

    def build(ctx: PublishContext) -> None:
        return None

    async def send_ok(ctx: PublishContext) -> None:
        sent.append(ctx.message)

    async def send_bad(ctx: PublishContext) -> None:
        raise ConnectionError("broker gone")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await pipeline.publish(PublishContext("m", None, None, {}), build, send_bad)
    assert b.state is State.OPEN
    with pytest.raises(CircuitOpenError):
        await pipeline.publish(PublishContext("m", None, None, {}), build, send_ok)
    assert sent == [] and b.state is State.OPEN    # the refused publish did not count again
    clock.now += 5
    await pipeline.publish(PublishContext("m", None, None, {}), build, send_ok)
    assert sent == ["m"] and b.state is State.CLOSED


async def test_handler_interceptor_skips_handler_while_open() -> None:
    b = CircuitBreaker(1, 5.0, clock=Clock())
    pipeline = Pipeline([HandlerCircuitBreakerInterceptor(b)])
    runs: list[int] = []

    async def handler() -> None:
        runs.append(1)
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        await pipeline.consume(ConsumeContext(None, None, None, "q", None, None), handler)
    with pytest.raises(CircuitOpenError) as info:
        await pipeline.consume(ConsumeContext(None, None, None, "q", None, None), handler)
    assert runs == [1] and getattr(info.value, "reason", None) == "circuit-open"
