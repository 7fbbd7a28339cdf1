"""Reliability: retry policies and in-process handler retry, broker-held TTL retry with per-queue
DLQs, dead-lettering (the default end of a failed delivery, wired by the Client), circuit breakers for
publishing and handlers, delayed publish without the plugin, DLQ tools."""
from __future__ import annotations

from mmate_fast.reliability.circuit_breaker import (
    CircuitBreaker,
    HandlerCircuitBreakerInterceptor,
    PublishCircuitBreakerInterceptor,
    State,
)
from mmate_fast.reliability.dead_lettering import DeadLettering
from mmate_fast.reliability.retry import (
    ExponentialBackoff,
    FixedDelay,
    LinearBackoff,
    RetryInterceptor,
    RetryPolicy,
    is_retryable,
    retry_call,
)
from mmate_fast.reliability.scheduling import Scheduler, schedule
from mmate_fast.reliability.ttl_retry import ATTEMPT_HEADER, TtlRetry

__all__ = ["ATTEMPT_HEADER", "CircuitBreaker", "DeadLettering", "ExponentialBackoff", "FixedDelay",
           "HandlerCircuitBreakerInterceptor", "LinearBackoff", "PublishCircuitBreakerInterceptor",
           "RetryInterceptor", "RetryPolicy", "Scheduler", "State", "TtlRetry", "is_retryable", "retry_call",
           "schedule"]
