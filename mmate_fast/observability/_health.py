"""Health reports shaped as mmate-go's ``monitor`` package, and a registry of checks that produces them.

A check is any callable, plain or ``async``, taking no argument. What it returns becomes a
:class:`CheckResult`: a CheckResult (its name is filled in), a :class:`HealthStatus`, a bool (True
healthy, False unhealthy), a str (healthy with that message) or None (healthy). A check that raises
is unhealthy with the exception as ``error``; one that runs past its timeout is unhealthy with
"timed out after N s". Checks of one run go concurrently, so a slow one costs its own timeout only.

The report's JSON is Go's ``monitor.Handler`` body: ``status``, ``timestamp`` (RFC 3339 UTC),
``duration`` (nanoseconds), ``checks`` (name -> ``name``, ``status``, ``message``?, ``duration``,
``details``?, ``timestamp``, ``error``?) and ``metadata``?; keys in ``details`` are snake_case as in
Go's monitoring JSON. The overall status is the worst of the checks (none: healthy).
"""
from __future__ import annotations

import asyncio
import enum
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mmate_fast import errors

#: a check: plain or async, no argument; see the module docstring for what it may return
Check = Callable[[], Any]
DEFAULT_TIMEOUT = 5.0


class HealthStatus(enum.StrEnum):
    """Go's ``HealthStatus`` values (the strings are what travels)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}


def worst(statuses: Any) -> HealthStatus:
    """The worst of ``statuses`` (healthy when there are none)."""
    return max(statuses, key=lambda s: s.rank, default=HealthStatus.HEALTHY)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class CheckResult:
    """The outcome of one check (Go's ``CheckResult``; ``duration`` in nanoseconds)."""

    name: str
    status: HealthStatus
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    duration: int = 0
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object Go writes for a check (empty message, details and error left out)."""
        out: dict[str, Any] = {"name": self.name, "status": self.status.value}
        if self.message:
            out["message"] = self.message
        out["duration"] = self.duration
        if self.details:
            out["details"] = self.details
        out["timestamp"] = _rfc3339(self.timestamp)
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class HealthReport:
    """All checks of one run; ``status`` is the worst of them."""

    status: HealthStatus
    checks: dict[str, CheckResult]
    duration: int = 0
    timestamp: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Healthy or degraded: what Go answers with HTTP 200 (and readiness with ``ready``)."""
        return self.status is not HealthStatus.UNHEALTHY

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value, "timestamp": _rfc3339(self.timestamp),
                               "duration": self.duration,
                               "checks": {name: r.to_dict() for name, r in self.checks.items()}}
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """The report as Go's handler writes it (indented by 2 spaces)."""
        return json.dumps(self.to_dict(), indent=indent)


@dataclass
class _Entry:
    check: Check
    timeout: float


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise errors.InvalidArgumentError(f"a health check timeout must be a number of seconds > 0, "
                                          f"got {timeout!r}", "timeout")
    return float(timeout)


class HealthChecker:
    """A registry of named checks, run together (each within its timeout) into a :class:`HealthReport`.

    ``metadata`` goes into every report (e.g. the service name and version).
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT,
                 metadata: Mapping[str, Any] | None = None) -> None:
        self.timeout = _check_timeout(timeout)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._checks: dict[str, _Entry] = {}

    def __repr__(self) -> str:
        return f"<HealthChecker checks={list(self._checks)}>"

    def __contains__(self, name: object) -> bool:
        return name in self._checks

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    def add(self, name: str, check: Check, *, timeout: float | None = None) -> None:
        """Register ``check`` under ``name`` (replacing one of that name); ``timeout`` in seconds
        (default: the checker's)."""
        if not isinstance(name, str) or not name:
            raise errors.InvalidArgumentError(f"a health check needs a non-empty name, got {name!r}", "name")
        if not callable(check):
            raise errors.InvalidArgumentError(f"health check {name!r} is not callable: {check!r}", "check")
        self._checks[name] = _Entry(check, self.timeout if timeout is None else _check_timeout(timeout))

    def check(self, name: str, *, timeout: float | None = None) -> Callable[[Check], Check]:
        """Decorator form of :meth:`add`: ``@checker.check("database")``."""

        def register(fn: Check) -> Check:
            self.add(name, fn, timeout=timeout)
            return fn

        return register

    def remove(self, name: str) -> None:
        """Forget the check ``name`` (no error if there is none)."""
        self._checks.pop(name, None)

    async def run_one(self, name: str, timeout: float | None = None) -> CheckResult:
        """Run the check ``name``; ``timeout`` caps its own timeout."""
        entry = self._checks.get(name)
        if entry is None:
            raise errors.InvalidArgumentError(f"no health check named {name!r} (have: {self.names})", "name")
        budget = entry.timeout if timeout is None else min(entry.timeout, timeout)
        return await _run(name, entry.check, budget)

    async def run(self, timeout: float | None = None) -> HealthReport:
        """Run every check concurrently; ``timeout`` (seconds) caps each check's own timeout."""
        t0 = time.perf_counter_ns()
        started = time.time()
        names = list(self._checks)
        results = await asyncio.gather(*(self.run_one(n, timeout) for n in names))
        checks = dict(zip(names, results, strict=True))
        return HealthReport(worst(r.status for r in results), checks, time.perf_counter_ns() - t0, started,
                            dict(self.metadata))


async def _run(name: str, check: Check, timeout: float) -> CheckResult:
    t0 = time.perf_counter_ns()
    started = time.time()
    try:
        async with asyncio.timeout(timeout):
            outcome = check()
            if inspect.isawaitable(outcome):
                outcome = await outcome
        result = _coerce(name, outcome)
    except TimeoutError:
        result = CheckResult(name, HealthStatus.UNHEALTHY, f"check timed out after {timeout:g} s",
                             error="timeout")
    except Exception as exc:
        result = CheckResult(name, HealthStatus.UNHEALTHY, "check failed",
                             error=f"{type(exc).__name__}: {exc}")
    result.name = name
    result.duration = time.perf_counter_ns() - t0
    result.timestamp = started
    return result


def _coerce(name: str, outcome: Any) -> CheckResult:
    if isinstance(outcome, CheckResult):
        return outcome
    if outcome is None:
        return CheckResult(name, HealthStatus.HEALTHY)
    if isinstance(outcome, HealthStatus):
        return CheckResult(name, outcome)
    if isinstance(outcome, bool):
        return CheckResult(name, HealthStatus.HEALTHY if outcome else HealthStatus.UNHEALTHY)
    if isinstance(outcome, str):
        return CheckResult(name, HealthStatus.HEALTHY, outcome)
    return CheckResult(name, HealthStatus.UNHEALTHY, "check returned something that is not a result",
                       error=f"unexpected return value of type {type(outcome).__name__}")


AsyncCheck = Callable[[], Awaitable[CheckResult]]

__all__ = ["DEFAULT_TIMEOUT", "AsyncCheck", "Check", "CheckResult", "HealthChecker", "HealthReport",
           "HealthStatus", "worst"]
