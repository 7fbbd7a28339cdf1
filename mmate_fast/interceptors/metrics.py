"""Prometheus metrics per message type, through ``prometheus_client`` (the ``observability`` extra).

Counters ``{namespace}_messages_{published,publish_failed,consumed,failed,skipped}_total{type}``:
publishes the broker took / that failed, handler calls that succeeded / failed (handler or
around-interceptor raised) / were skipped (e.g. a duplicate). Histograms ``{namespace}_publish_seconds``
(the publish call incl. the broker confirm) and ``{namespace}_handler_seconds`` per type, with the
``buckets`` (seconds); the gauge ``{namespace}_handlers_in_flight``. A message failed by another
interceptor's ``before_consume`` (bad signature, validation) never reaches this one: the subscription
stats count it (``mmate_fast.observability`` exports those too, read at scrape time).

The metrics live in ``registry``: a new ``CollectorRegistry`` per interceptor by default (no clash
between clients or tests), ``prometheus_client.REGISTRY`` on request. :meth:`render_prometheus` gives
the registry in the text exposition format, :meth:`snapshot` a plain dict.

The ``type`` label set is bounded (:class:`TypeLabels`), so a ``"*"`` handler fed arbitrary type names
cannot grow memory or a scrape without limit: the first ``max_types`` distinct types (default 100) get
a label each, every later type (and any name longer than 255 characters) is counted under ``"other"``,
and that is logged once. :meth:`MetricsInterceptor.reset` zeroes everything and frees the labels.
"""
from __future__ import annotations

import logging
import math
import time
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
_MISSING = ("MetricsInterceptor needs prometheus_client: install the 'observability' extra "
            "(pip install 'mmate-fast[observability]')")


def import_prometheus() -> Any:
    """The ``prometheus_client`` module, or ImportError saying which extra to install."""
    try:
        import prometheus_client
        import prometheus_client.core
        import prometheus_client.exposition
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_MISSING) from exc
    return prometheus_client


def check_max_types(max_types: int) -> int:
    if isinstance(max_types, bool) or not isinstance(max_types, int) or max_types < 0:
        raise ConfigurationError(
            f"max_types must be an int >= 0 (message types with a label of their own; the rest "
            f"count as {OTHER!r}), got {max_types!r}")
    return max_types


class TypeLabels:
    """A bounded set of message-type labels: the first ``max_types`` types keep their name, the rest
    (and names over 255 characters) become ``"other"`` (logged once, naming ``owner``)."""

    __slots__ = ("_capped", "_types", "max_types", "owner")

    def __init__(self, max_types: int = DEFAULT_MAX_TYPES, owner: str = "metrics") -> None:
        self.max_types = check_max_types(max_types)
        self.owner = owner
        self._types: set[str] = set()
        self._capped = False

    def __call__(self, type_: str) -> str:
        if type_ in self._types:
            return type_
        if len(self._types) < self.max_types and len(type_) <= _MAX_LABEL:
            self._types.add(type_)
            return type_
        if not self._capped:
            self._capped = True
            log.warning("%s: more than max_types=%d message types (or a type name over %d characters); "
                        "further types are counted under %r (raise max_types to see more)",
                        self.owner, self.max_types, _MAX_LABEL, OTHER)
        return OTHER

    def clear(self) -> None:
        self._types.clear()
        self._capped = False


class MetricsInterceptor(Interceptor):
    """Count and time publishes and handler calls per message type in a Prometheus registry.

    ``max_types``: how many distinct message types get a ``type`` label of their own (0 or more);
    later ones are counted under ``"other"``. ``registry``: where the metrics are registered
    (default: a new ``CollectorRegistry`` of this interceptor, ``self.registry``).
    """

    def __init__(self, *, buckets: tuple[float, ...] = DEFAULT_BUCKETS, namespace: str = "mmate",
                 max_types: int = DEFAULT_MAX_TYPES, registry: Any = None) -> None:
        if not buckets or list(buckets) != sorted(set(buckets)) or buckets[0] <= 0:
            raise ConfigurationError("buckets must be positive, strictly increasing upper bounds in seconds")
        self._prom = import_prometheus()
        self.buckets = tuple(float(b) for b in buckets)
        self.namespace = namespace
        self.labels = TypeLabels(max_types, f"metrics {namespace}")
        self.registry = registry if registry is not None else self._prom.CollectorRegistry()
        self._metrics: dict[str, Any] = {}
        self._children: dict[str, tuple[Any, ...]] = {}
        self._create()

    @property
    def max_types(self) -> int:
        return self.labels.max_types

    def __repr__(self) -> str:
        return f"<MetricsInterceptor {self.namespace}>"

    def _create(self) -> None:
        prom, ns, reg = self._prom, self.namespace, self.registry
        for name, help_ in _COUNTERS.items():
            self._metrics[name] = prom.Counter(f"{ns}_messages_{name}", help_, ["type"], registry=reg)
        for name, help_ in _HISTOGRAMS.items():
            self._metrics[name] = prom.Histogram(f"{ns}_{name}", help_, ["type"], buckets=self.buckets,
                                                 registry=reg)
        self._metrics["in_flight"] = prom.Gauge(f"{ns}_handlers_in_flight",
                                                "Handler calls running now (through the interceptors).",
                                                registry=reg)
        self._in_flight = self._metrics["in_flight"]

    def _of(self, type_: str) -> tuple[Any, ...]:
        """The label children of ``type_``: (published, publish_failed, consumed, failed, skipped,
        publish_seconds, handler_seconds), created once per label."""
        children = self._children.get(type_)
        if children is None:
            label = self.labels(type_)
            children = self._children.get(label)
            if children is None:
                m = self._metrics
                children = tuple(m[name].labels(label) for name in (*_COUNTERS, *_HISTOGRAMS))
                self._children[label] = children
            if label == type_:
                self._children[type_] = children
        return children

    # ------------------------------------------------------------------ hooks
    async def before_publish(self, ctx: PublishContext) -> bool | None:
        ctx.items[_T0] = time.perf_counter()
        return None

    async def after_publish(self, ctx: PublishContext, error: BaseException | None) -> None:
        children = self._of(type_name(ctx.message))
        if error is None:
            children[0].inc()
            now = time.perf_counter()
            children[5].observe(now - ctx.items.get(_T0, now))
        else:
            children[1].inc()

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        ctx.items[_T0] = time.perf_counter()
        self._in_flight.inc()
        return None

    async def after_consume(self, ctx: ConsumeContext, error: BaseException | None) -> None:
        items = ctx.items
        if _T0 in items:
            self._in_flight.dec()
        children = self._of(ctx.envelope.type)
        if error is not None:
            children[3].inc()
        elif ctx.skipped:
            children[4].inc()
            return
        else:
            children[2].inc()
        now = time.perf_counter()
        children[6].observe(now - items.get(_T0, now))

    # ------------------------------------------------------------------ export
    def snapshot(self) -> dict[str, Any]:
        """``{"published": {type: n}, ..., "handler_seconds": {type: {"count", "sum", "buckets":
        {upper_bound: cumulative_count}}}, "in_flight": n}`` (``inf`` is the last bound; types
        with nothing counted yet are left out, as they were before prometheus_client)."""
        out: dict[str, Any] = {}
        for name in _COUNTERS:
            out[name] = {s.labels["type"]: int(s.value) for metric in self._metrics[name].collect()
                         for s in metric.samples if s.name.endswith("_total") and s.value}
        for name in _HISTOGRAMS:
            per_type: dict[str, dict[str, Any]] = {}
            for metric in self._metrics[name].collect():
                for s in metric.samples:
                    h = per_type.setdefault(s.labels["type"], {"count": 0, "sum": 0.0, "buckets": {}})
                    if s.name.endswith("_bucket"):
                        h["buckets"][_bound(s.labels["le"])] = int(s.value)
                    elif s.name.endswith("_count"):
                        h["count"] = int(s.value)
                    elif s.name.endswith("_sum"):
                        h["sum"] = s.value
            out[name] = {t: h for t, h in per_type.items() if h["count"]}
        out["in_flight"] = int(self._in_flight._value.get())
        return out

    def reset(self) -> None:
        """Zero every metric and free the type labels (the metrics are registered anew)."""
        self.unregister()
        self._children.clear()
        self.labels.clear()
        self._create()

    def unregister(self) -> None:
        """Take this interceptor's metrics out of its registry (e.g. the default one)."""
        for metric in self._metrics.values():
            self.registry.unregister(metric)
        self._metrics.clear()

    def render_prometheus(self) -> str:
        """The registry in the Prometheus text exposition format (version 0.0.4)."""
        return bytes(self._prom.generate_latest(self.registry)).decode()


def _bound(text: str) -> float:
    return math.inf if text == "+Inf" else float(text)


__all__ = ["DEFAULT_BUCKETS", "DEFAULT_MAX_TYPES", "OTHER", "MetricsInterceptor", "TypeLabels",
           "check_max_types", "import_prometheus"]
