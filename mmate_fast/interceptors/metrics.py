"""In-process metrics: counters per message type and latency histograms, no dependency.

Counters: ``published``, ``publish_failed``, ``consumed`` (handler succeeded), ``failed`` (handler
or around-interceptor raised), ``skipped`` (e.g. duplicate) — each per wire type. Histograms:
``publish_seconds`` (publish call incl. broker confirm) and ``handler_seconds`` per type, with
fixed cumulative ``buckets`` (seconds).

:meth:`MetricsInterceptor.snapshot` gives a plain dict; :meth:`MetricsInterceptor.render_prometheus`
the Prometheus text exposition format (0.0.4), e.g. for an HTTP ``/metrics`` endpoint.
A message failed by another interceptor's ``before_consume`` (bad signature, validation) never
reaches ``after_consume``: it is counted by the subscription stats, not here.

The ``type`` label set is bounded, so a ``"*"`` handler fed arbitrary type names cannot grow memory
or a Prometheus scrape without limit: the first ``max_types`` distinct types (default 100) get a
label each, every later type (and any type name longer than 255 characters) is counted under
``"other"``, and that is logged once. :meth:`MetricsInterceptor.reset` frees the labels.
"""
from __future__ import annotations

import bisect
import logging
import math
import time
from collections import Counter
from typing import Any

from mmate_fast.errors import ConfigurationError
from mmate_fast.interceptors._types import type_name
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, PublishContext

DEFAULT_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                                      2.5, 5.0, 10.0)
_T0 = "metrics.t0"
#: the label of every message type beyond ``max_types`` (and of over-long type names)
OTHER = "other"
DEFAULT_MAX_TYPES = 100
_MAX_LABEL = 255  # characters of a type name that still gets a label of its own
log = logging.getLogger(__name__)
_COUNTERS = {
    "published": "Messages published (broker accepted).",
    "publish_failed": "Publishes that failed.",
    "consumed": "Handler calls that succeeded.",
    "failed": "Handler calls that failed.",
    "skipped": "Handler calls skipped by an interceptor (e.g. duplicates).",
}
_HISTOGRAMS = {
    "publish_seconds": "Publish latency in seconds (incl. the broker confirm).",
    "handler_seconds": "Handler duration in seconds.",
}


class Histogram:
    """Fixed-bucket histogram (per-bucket counts; cumulated on export)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last: > highest bound
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[float, int]]:
        out: list[tuple[float, int]] = []
        total = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class MetricsInterceptor(Interceptor):
    """Count and time publishes and handler calls per message type.

    ``max_types``: how many distinct message types get a ``type`` label of their own (0 or more);
    later ones are counted under ``"other"``.
    """

    def __init__(self, *, buckets: tuple[float, ...] = DEFAULT_BUCKETS, namespace: str = "mmate",
                 max_types: int = DEFAULT_MAX_TYPES) -> None:
        if not buckets or list(buckets) != sorted(set(buckets)) or buckets[0] <= 0:
            raise ConfigurationError("buckets must be positive, strictly increasing upper bounds in seconds")
        if isinstance(max_types, bool) or not isinstance(max_types, int) or max_types < 0:
            raise ConfigurationError(
                f"max_types must be an int >= 0 (message types with a label of their own; the rest "
                f"count as {OTHER!r}), got {max_types!r}")
        self.buckets = tuple(float(b) for b in buckets)
        self.namespace = namespace
        self.max_types = max_types
        self.counters: dict[str, Counter[str]] = {name: Counter() for name in _COUNTERS}
        self.histograms: dict[str, dict[str, Histogram]] = {name: {} for name in _HISTOGRAMS}
        self._types: set[str] = set()
        self._capped = False

    def __repr__(self) -> str:
        return f"<MetricsInterceptor {self.namespace}>"

    def _label(self, type_: str) -> str:
        """``type_`` when it has (or may still get) a label of its own, else ``"other"``."""
        if type_ in self._types:
            return type_
        if len(self._types) < self.max_types and len(type_) <= _MAX_LABEL:
            self._types.add(type_)
            return type_
        if not self._capped:
            self._capped = True
            log.warning("metrics %s: more than max_types=%d message types (or a type name over %d "
                        "characters); further types are counted under %r (raise max_types to see more)",
                        self.namespace, self.max_types, _MAX_LABEL, OTHER)
        return OTHER

    def _observe(self, name: str, type_: str, seconds: float) -> None:
        per_type = self.histograms[name]
        h = per_type.get(type_)
        if h is None:
            h = per_type[type_] = Histogram(self.buckets)
        h.observe(seconds)

    # ------------------------------------------------------------------ hooks
    async def before_publish(self, ctx: PublishContext) -> bool | None:
        ctx.items[_T0] = time.perf_counter()
        return None

    async def after_publish(self, ctx: PublishContext, error: BaseException | None) -> None:
        type_ = self._label(type_name(ctx.message))
        if error is None:
            self.counters["published"][type_] += 1
            now = time.perf_counter()
            self._observe("publish_seconds", type_, now - ctx.items.get(_T0, now))
        else:
            self.counters["publish_failed"][type_] += 1

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        ctx.items[_T0] = time.perf_counter()
        return None

    async def after_consume(self, ctx: ConsumeContext, error: BaseException | None) -> None:
        type_ = self._label(ctx.envelope.type)
        if error is not None:
            self.counters["failed"][type_] += 1
        elif ctx.skipped:
            self.counters["skipped"][type_] += 1
            return
        else:
            self.counters["consumed"][type_] += 1
        now = time.perf_counter()
        self._observe("handler_seconds", type_, now - ctx.items.get(_T0, now))

    # ------------------------------------------------------------------ export
    def snapshot(self) -> dict[str, Any]:
        """``{"published": {type: n}, ..., "handler_seconds": {type: {"count", "sum", "buckets":
        {upper_bound: cumulative_count}}}}`` (``inf`` is the last bound)."""
        out: dict[str, Any] = {name: dict(c) for name, c in self.counters.items()}
        for name, per_type in self.histograms.items():
            out[name] = {t: {"count": h.count, "sum": h.sum, "buckets": dict(h.cumulative())}
                         for t, h in per_type.items()}
        return out

    def reset(self) -> None:
        """Zero every metric and free the type labels."""
        for c in self.counters.values():
            c.clear()
        for per_type in self.histograms.values():
            per_type.clear()
        self._types.clear()
        self._capped = False

    def render_prometheus(self) -> str:
        """The metrics in the Prometheus text exposition format (version 0.0.4)."""
        ns = self.namespace
        lines: list[str] = []
        for name, help_ in _COUNTERS.items():
            metric = f"{ns}_messages_{name}_total"
            lines += [f"# HELP {metric} {help_}", f"# TYPE {metric} counter"]
            for type_, n in sorted(self.counters[name].items()):
                lines.append(f'{metric}{{type="{_label(type_)}"}} {n}')
        for name, help_ in _HISTOGRAMS.items():
            metric = f"{ns}_{name}"
            lines += [f"# HELP {metric} {help_}", f"# TYPE {metric} histogram"]
            for type_, h in sorted(self.histograms[name].items()):
                t = _label(type_)
                for bound, n in h.cumulative():
                    lines.append(f'{metric}_bucket{{type="{t}",le="{_num(bound)}"}} {n}')
                lines.append(f'{metric}_sum{{type="{t}"}} {_num(h.sum)}')
                lines.append(f'{metric}_count{{type="{t}"}} {h.count}')
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value))


__all__ = ["DEFAULT_BUCKETS", "DEFAULT_MAX_TYPES", "OTHER", "Histogram", "MetricsInterceptor"]
