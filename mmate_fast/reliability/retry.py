"""Retry policies and in-process handler retry (wire spec §7.1; no wire effect).

A policy answers one question: how long to wait before retry number ``attempt`` (1 = the first
retry), or ``None`` to give up. ``ExponentialBackoff()`` with no arguments is mmate-go's
``WithDefaultRetry`` policy (100 ms, x2, capped at 30 s, 3 retries, ±15 % jitter).

Errors opt out of retrying with an attribute ``retryable = False`` (Go: ``IsRetryable() false``;
a method ``is_retryable()`` is honoured too) or through a policy's ``retry_on`` predicate.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from mmate_fast import _backoff
from mmate_fast.errors import ConfigurationError
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor

log = logging.getLogger("mmate_fast.retry")

#: decides whether an exception is worth another attempt
RetryPredicate = Callable[[BaseException], bool]


@runtime_checkable
class RetryPolicy(Protocol):
    """How long to wait before retry ``attempt`` (1-based); ``None`` means give up."""

    def delay(self, attempt: int) -> float | None: ...


def is_retryable(exc: BaseException, predicate: RetryPredicate | None = None) -> bool:
    """False when ``exc`` opts out (``retryable = False`` / ``is_retryable() -> False``) or the
    predicate says no; True otherwise. Cancellation is never retried."""
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
        return False
    flag = getattr(exc, "retryable", None)
    if flag is False:
        return False
    method = getattr(exc, "is_retryable", None)
    if callable(method):
        try:
            if method() is False:
                return False
        except Exception:  # a broken opt-out must not turn into an endless retry loop
            return False
    return predicate is None or bool(predicate(exc))


def _check(name: str, value: float, minimum: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise ConfigurationError(f"{name} must be a number >= {minimum}, got {value!r}")


class _Base:
    max_retries: int
    retry_on: RetryPredicate | None

    def should_retry(self, exc: BaseException) -> bool:
        return is_retryable(exc, self.retry_on)


class ExponentialBackoff(_Base):
    """``initial·multiplier^(attempt-1)``, capped at ``max``, then x U(1-jitter, 1+jitter)."""

    def __init__(self, initial: float = 0.1, max: float = 30.0, multiplier: float = 2.0,
                 max_retries: int = 3, jitter: float = 0.15, *, retry_on: RetryPredicate | None = None,
                 rng: Callable[[], float] = random.random) -> None:
        _check("initial", initial)
        _check("max", max)
        _check("multiplier", multiplier, 1.0)
        _check("max_retries", max_retries)
        if not 0.0 <= jitter < 1.0:
            raise ConfigurationError(f"jitter must be in [0, 1), got {jitter!r}")
        self.initial = initial
        self.max = max
        self.multiplier = multiplier
        self.max_retries = max_retries
        self.jitter = jitter
        self.retry_on = retry_on
        self._rng = rng

    def delay(self, attempt: int) -> float | None:
        if attempt < 1 or attempt > self.max_retries:
            return None
        return _backoff.exponential(attempt, self.initial, self.max, self.multiplier, self.jitter, self._rng)

    def __repr__(self) -> str:
        return (f"ExponentialBackoff(initial={self.initial}, max={self.max}, multiplier={self.multiplier}, "
                f"max_retries={self.max_retries}, jitter={self.jitter})")


class LinearBackoff(_Base):
    """``initial + increment·(attempt-1)``, capped at ``max``."""

    def __init__(self, initial: float = 0.1, increment: float = 0.1, max: float = 30.0,
                 max_retries: int = 3, *, retry_on: RetryPredicate | None = None) -> None:
        _check("initial", initial)
        _check("increment", increment)
        _check("max", max)
        _check("max_retries", max_retries)
        self.initial = initial
        self.increment = increment
        self.max = max
        self.max_retries = max_retries
        self.retry_on = retry_on

    def delay(self, attempt: int) -> float | None:
        if attempt < 1 or attempt > self.max_retries:
            return None
        return min(self.initial + self.increment * (attempt - 1), self.max)

    def __repr__(self) -> str:
        return (f"LinearBackoff(initial={self.initial}, increment={self.increment}, max={self.max}, "
                f"max_retries={self.max_retries})")


class FixedDelay(_Base):
    """The same ``delay`` before every retry."""

    def __init__(self, delay: float = 1.0, max_retries: int = 3, *,
                 retry_on: RetryPredicate | None = None) -> None:
        _check("delay", delay)
        _check("max_retries", max_retries)
        self.fixed = delay
        self.max_retries = max_retries
        self.retry_on = retry_on

    def delay(self, attempt: int) -> float | None:
        if attempt < 1 or attempt > self.max_retries:
            return None
        return self.fixed

    def __repr__(self) -> str:
        return f"FixedDelay(delay={self.fixed}, max_retries={self.max_retries})"


def policy_allows(policy: RetryPolicy, exc: BaseException) -> bool:
    """Whether ``policy`` (its ``should_retry`` if it has one) wants to retry ``exc``."""
    should = getattr(policy, "should_retry", None)
    if callable(should):
        return bool(should(exc))
    return is_retryable(exc)


async def retry_call(policy: RetryPolicy, fn: Callable[[], Awaitable[Any]], *,
                     sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                     on_retry: Callable[[int, BaseException, float], None] | None = None) -> Any:
    """Await ``fn()``; on a retryable error wait ``policy.delay(n)`` and try again. When the policy
    gives up (or the error opts out) the last error is re-raised unchanged."""
    attempt = 0
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not policy_allows(policy, exc):
                raise
            attempt += 1
            wait = policy.delay(attempt)
            if wait is None:
                raise
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            await sleep(wait)


class RetryInterceptor(Interceptor):
    """``around_handler``: re-run a failing handler in-process per ``policy`` (the delivery stays
    unacked meanwhile, as in Go). After the last attempt the error goes on to the normal failure
    path (reject / DLQ / failure handler). ``ctx.items["retry-attempt"]`` holds the attempt (0 first)."""

    def __init__(self, policy: RetryPolicy | None = None, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.policy: RetryPolicy = policy if policy is not None else ExponentialBackoff()
        self._sleep = sleep
        self.retries = 0

    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        ctx.items["retry-attempt"] = 0

        def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
            self.retries += 1
            ctx.items["retry-attempt"] = attempt
            log.warning("handler %s on %r failed (%r); retry %d in %.3f s",
                        getattr(ctx.handler, "name", "?"), ctx.queue, exc, attempt, wait)

        return await retry_call(self.policy, call_next, sleep=self._sleep, on_retry=on_retry)


__all__ = ["ExponentialBackoff", "FixedDelay", "LinearBackoff", "RetryInterceptor", "RetryPolicy",
           "RetryPredicate", "is_retryable", "policy_allows", "retry_call"]
