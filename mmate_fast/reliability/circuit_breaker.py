"""Circuit breaker for publishing and for handlers: closed -> open -> half-open -> closed.

closed: calls pass; ``failure_threshold`` consecutive failures open the circuit.
open: calls fail fast with CircuitOpenError for ``recovery_timeout`` seconds.
half-open: at most ``half_open_max_calls`` trial calls at a time; ``success_threshold`` successes
close the circuit, any failure opens it again.

Listeners get ``(breaker, old_state, new_state)`` on every change. The clock is injectable
(``clock=``) so tests need no sleeping.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from mmate_fast import errors
from mmate_fast.errors import CircuitOpenError
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, PublishContext

log = logging.getLogger("mmate_fast.circuit_breaker")

T = TypeVar("T")


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


Listener = Callable[["CircuitBreaker", State, State], None]


class CircuitBreaker:
    """Counts failures of a protected operation and stops calling it while it keeps failing."""

    def __init__(self, failure_threshold: int = 5, recovery_timeout: float = 30.0,
                 half_open_max_calls: int = 1, success_threshold: int = 1, *, name: str = "circuit",
                 is_failure: Callable[[BaseException], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or success_threshold < 1:
            raise errors.ConfigurationError(
                "failure_threshold, half_open_max_calls and success_threshold must be >= 1")
        if recovery_timeout < 0:
            raise errors.ConfigurationError(f"recovery_timeout must be >= 0, got {recovery_timeout!r}")
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.half_open_max_calls = half_open_max_calls
        self.success_threshold = success_threshold
        self.name = name
        #: which exceptions count as failures (default: all but CircuitOpenError)
        self.is_failure = is_failure
        self._clock = clock
        self._state = State.CLOSED
        self._failures = 0
        self._successes = 0
        self._trials = 0
        self._opened_at = 0.0
        self._listeners: list[Listener] = []
        #: calls refused while open
        self.rejected = 0

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self.state.value} failures={self._failures}>"

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> State:
        """Current state (an open circuit past its recovery timeout reads as half-open)."""
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.recovery_timeout:
            self._set(State.HALF_OPEN)
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def retry_after(self) -> float:
        """Seconds until an open circuit lets a trial call through (0 when not open)."""
        if self.state is not State.OPEN:
            return 0.0
        return max(0.0, self.recovery_timeout - (self._clock() - self._opened_at))

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _set(self, new: State) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self._successes = 0
        self._trials = 0
        if new is State.OPEN:
            self._opened_at = self._clock()
        elif new is State.CLOSED:
            self._failures = 0
        log.info("circuit %r: %s -> %s", self.name, old.value, new.value)
        for listener in list(self._listeners):
            try:
                listener(self, old, new)
            except Exception as exc:
                log.error("circuit listener failed: %r", exc)

    def reset(self) -> None:
        """Force the circuit closed."""
        self._set(State.CLOSED)
        self._failures = 0

    def trip(self) -> None:
        """Force the circuit open (for ``recovery_timeout``)."""
        self._set(State.OPEN)
        self._opened_at = self._clock()

    # ------------------------------------------------------------------ protocol
    def acquire(self) -> None:
        """Admit one call or raise CircuitOpenError. Pair with :meth:`record_success` /
        :meth:`record_failure` (or use :meth:`call` / ``with breaker:``)."""
        state = self.state
        if state is State.CLOSED:
            return
        if state is State.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return
        self.rejected += 1
        raise CircuitOpenError(f"circuit {self.name!r} is {state.value}: call not attempted",
                               self.retry_after())

    def record_success(self) -> None:
        if self._state is State.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            self._successes += 1
            if self._successes >= self.success_threshold:
                self._set(State.CLOSED)
        elif self._state is State.CLOSED:
            self._failures = 0

    def record_failure(self, exc: BaseException | None = None) -> None:
        if exc is not None and not self._counts(exc):
            if self._state is State.HALF_OPEN:
                self._trials = max(0, self._trials - 1)
            return
        if self._state is State.HALF_OPEN:
            self._failures += 1
            self._set(State.OPEN)
        elif self._state is State.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._set(State.OPEN)

    def _counts(self, exc: BaseException) -> bool:
        if isinstance(exc, CircuitOpenError | asyncio.CancelledError):
            return False
        return self.is_failure is None or bool(self.is_failure(exc))

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``await fn(*args, **kwargs)`` through the breaker."""
        self.acquire()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self.record_failure(exc)
            raise
        self.record_success()
        return result

    def __enter__(self) -> CircuitBreaker:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.record_success()
        else:
            self.record_failure(exc)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


_ADMITTED = "circuit-breaker-admitted"


class PublishCircuitBreakerInterceptor(Interceptor):
    """Publishing through a breaker: ``before_publish`` raises CircuitOpenError while open,
    ``after_publish`` records the outcome (a nack, return, timeout or closed channel is a failure)."""

    def __init__(self, breaker: CircuitBreaker | None = None) -> None:
        self.breaker = breaker if breaker is not None else CircuitBreaker(name="publish")

    async def before_publish(self, ctx: PublishContext) -> bool | None:
        self.breaker.acquire()
        ctx.items[_ADMITTED] = self.breaker
        return None

    async def after_publish(self, ctx: PublishContext, error: BaseException | None) -> None:
        if ctx.items.pop(_ADMITTED, None) is not self.breaker:
            return
        if error is None:
            self.breaker.record_success()
        else:
            self.breaker.record_failure(error)


class HandlerCircuitBreakerInterceptor(Interceptor):
    """Handlers through a breaker (``around_handler``). While open the handler is not called: the
    delivery fails with CircuitOpenError, reason ``circuit-open``, and takes the normal failure path
    (reject, DLQ, or TtlRetry, which retries it later)."""

    def __init__(self, breaker: CircuitBreaker | None = None) -> None:
        self.breaker = breaker if breaker is not None else CircuitBreaker(name="handler")

    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        return await self.breaker.call(call_next)


__all__ = ["CircuitBreaker", "HandlerCircuitBreakerInterceptor", "Listener",
           "PublishCircuitBreakerInterceptor", "State"]
