"""Prometheus metrics of one Client, with as little work per message as possible.

Per message, :class:`MessageStats` (a MessageObserver: the publisher and the subscriber call it
directly, no interceptor, so plain handlers stay inline) counts publishes and handler runs per
message type and fills fixed latency buckets in plain Python. Everything else the client already
counts. Both are read only when scraped, by :class:`ClientCollector`:

- per type (label ``type``, bounded: the first ``max_types`` types, then ``other``):
  ``{ns}_messages_published_total``, ``_publish_failed_total``, ``_consumed_total`` (handlers ran
  without error), ``_failed_total`` (a handler raised); histograms ``{ns}_publish_seconds`` (the
  awaited publish, incl. the broker confirm in confirm mode) and ``{ns}_handler_seconds``;
- per consumed queue (label ``queue``): deliveries received, acked, rejected, dead-lettered, handler
  errors, failures by reason, stale settles, consumer restarts, retries (a TtlRetry failure handler's
  ``retried`` / ``gave_up``), handlers in flight and deliveries waiting for a handler;
- for the client: messages its publisher sent, connection up / blocked, and the RabbitMQ recovery
  counters (reconnects, disconnects, failed reconnect attempts, republished publishes, channel
  reopens).

:class:`ClientMetrics` puts the collector into one ``CollectorRegistry`` (a new one per client by
default, so tests and several clients never clash; ``prometheus_client.REGISTRY`` on request).
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from typing import Any

from mmate_fast import errors
from mmate_fast.interceptors._types import type_name
from mmate_fast.interceptors.metrics import DEFAULT_BUCKETS, DEFAULT_MAX_TYPES, TypeLabels, import_prometheus

#: subscription stats field -> (metric suffix, help)
_SUB_COUNTERS = {
    "received": ("deliveries_received", "Deliveries received from the broker."),
    "acked": ("deliveries_acked", "Deliveries acknowledged (handled, or dealt with by a failure handler)."),
    "rejected": ("deliveries_rejected", "Deliveries rejected without requeue (no dead-letter copy kept)."),
    "dead_lettered": ("deliveries_dead_lettered", "Deliveries whose record was kept in their DLQ."),
    "handler_errors": ("handler_errors", "Handler calls that raised."),
    "stale_settles": ("stale_settles", "Settles dropped as stale after a reconnect (redelivered)."),
    "consumer_restarts": ("consumer_restarts", "Consumers restarted after a cancel or channel close."),
}
#: RecoveryStats field -> (metric suffix, help)
_RECOVERY_COUNTERS = {
    "reconnects": ("connection_reconnects", "Successful reconnects of the RabbitMQ connection."),
    "disconnects": ("connection_disconnects", "Times the RabbitMQ connection was lost."),
    "failed_attempts": ("connection_reconnect_failures", "Reconnect attempts that failed."),
    "republished": ("connection_republished", "Unconfirmed publishes re-sent after a reconnect."),
    "channel_reopens": ("channel_reopens", "Channels reopened after the broker closed them."),
}


class _PerType:
    """Counts and latency buckets of one message type (bucket i: <= bounds[i]; the last: above all)."""

    __slots__ = ("consumed", "failed", "handler", "handler_sum", "publish", "publish_failed", "publish_sum",
                 "published")

    def __init__(self, size: int) -> None:
        self.published = self.publish_failed = self.consumed = self.failed = 0
        self.publish = [0] * size
        self.handler = [0] * size
        self.publish_sum = self.handler_sum = 0.0


class MessageStats:
    """A MessageObserver counting publishes and handler runs per message type (see the module
    docstring); ``max_types`` bounds the ``type`` label set, ``buckets`` are the latency bounds."""

    def __init__(self, *, max_types: int = DEFAULT_MAX_TYPES, buckets: tuple[float, ...] = DEFAULT_BUCKETS,
                 name: str = "metrics") -> None:
        if not buckets or list(buckets) != sorted(set(buckets)) or buckets[0] <= 0:
            raise errors.ConfigurationError("buckets must be positive, strictly increasing upper bounds in "
                                            "seconds")
        self.bounds = tuple(float(b) for b in buckets)
        self.labels = TypeLabels(max_types, name)
        self.types: dict[str, _PerType] = {}

    def _of(self, type_: str) -> _PerType:
        per = self.types.get(type_)
        if per is None:
            label = self.labels(type_)
            per = self.types.get(label)
            if per is None:
                per = self.types[label] = _PerType(len(self.bounds) + 1)
        return per

    def published(self, message: Any, seconds: float, error: BaseException | None) -> None:
        per = self._of(type_name(message))
        if error is None:
            per.published += 1
            per.publish[bisect.bisect_left(self.bounds, seconds)] += 1
            per.publish_sum += seconds
        else:
            per.publish_failed += 1

    def handled(self, type_name: str, seconds: float, error: BaseException | None) -> None:
        per = self._of(type_name)
        if error is None:
            per.consumed += 1
        else:
            per.failed += 1
        per.handler[bisect.bisect_left(self.bounds, seconds)] += 1
        per.handler_sum += seconds

    def buckets(self, counts: list[int]) -> list[tuple[str, int]]:
        """Cumulative ``(le, count)`` pairs for a HistogramMetricFamily."""
        out: list[tuple[str, int]] = []
        total = 0
        for bound, n in zip((*self.bounds, math.inf), counts, strict=True):
            total += n
            out.append(("+Inf" if bound == math.inf else repr(bound), total))
        return out


class ClientCollector:
    """A prometheus_client collector reading a Client's counters when scraped."""

    def __init__(self, client: Any, namespace: str = "mmate", messages: MessageStats | None = None) -> None:
        self._prom = import_prometheus()
        self.client = client
        self.namespace = namespace
        self.messages = messages

    def describe(self) -> list[Any]:
        return []  # the metric set depends on the client's subscriptions at scrape time

    def collect(self) -> Iterator[Any]:
        if self.messages is not None:
            yield from self._per_type(self.messages)
        yield from self._client()

    def _per_type(self, stats: MessageStats) -> Iterator[Any]:
        core, ns = self._prom.core, self.namespace
        families = {name: core.CounterMetricFamily(f"{ns}_messages_{name}", help_, labels=["type"])
                    for name, help_ in (("published", "Messages published (the broker took them)."),
                                        ("publish_failed", "Publishes that failed."),
                                        ("consumed", "Deliveries whose handlers ran without error."),
                                        ("failed", "Deliveries whose handler raised."))}
        publish = core.HistogramMetricFamily(f"{ns}_publish_seconds", "Publish latency in seconds (incl. "
                                             "the broker confirm in confirm mode).", labels=["type"])
        handler = core.HistogramMetricFamily(f"{ns}_handler_seconds", "Handler duration in seconds, per "
                                             "delivery.", labels=["type"])
        for type_, per in sorted(stats.types.copy().items()):
            for name, family in families.items():
                family.add_metric([type_], getattr(per, name))
            if per.published:
                publish.add_metric([type_], stats.buckets(per.publish), per.publish_sum)
            if per.consumed or per.failed:
                handler.add_metric([type_], stats.buckets(per.handler), per.handler_sum)
        yield from families.values()
        yield from (publish, handler)

    def _client(self) -> Iterator[Any]:
        core = self._prom.core
        ns, client = self.namespace, self.client
        subs = list(getattr(getattr(client, "subscriber", None), "subscriptions", ()) or ())
        counters = {field: core.CounterMetricFamily(f"{ns}_{suffix}", help_, labels=["queue"])
                    for field, (suffix, help_) in _SUB_COUNTERS.items()}
        reasons = core.CounterMetricFamily(f"{ns}_delivery_failures", "Failed deliveries by reason.",
                                           labels=["queue", "reason"])
        retried = core.CounterMetricFamily(f"{ns}_messages_retried",
                                           "Failed deliveries sent to a retry delay queue.", labels=["queue"])
        gave_up = core.CounterMetricFamily(f"{ns}_retries_exhausted", "Failed deliveries given up after "
                                           "their retries.", labels=["queue"])
        in_flight = core.GaugeMetricFamily(f"{ns}_subscription_in_flight",
                                           "Async handler calls running now.", labels=["queue"])
        waiting = core.GaugeMetricFamily(f"{ns}_subscription_waiting",
                                         "Deliveries waiting for a free handler slot.", labels=["queue"])
        seen: dict[str, int] = {}
        for sub in subs:
            n = seen[sub.queue] = seen.get(sub.queue, 0) + 1
            label = sub.queue if n == 1 else f"{sub.queue}#{n}"
            st = sub.stats
            for field, family in counters.items():
                family.add_metric([label], getattr(st, field))
            for reason, count in sorted(st.reasons.items()):
                reasons.add_metric([label, reason], count)
            handler = sub.failure_handler
            if handler is not None and hasattr(handler, "retried"):
                retried.add_metric([label], handler.retried)
                gave_up.add_metric([label], getattr(handler, "gave_up", 0))
            in_flight.add_metric([label], sub.in_flight)
            waiting.add_metric([label], sub.waiting)
        yield from counters.values()
        yield from (reasons, retried, gave_up, in_flight, waiting)
        publisher = getattr(client, "publisher", None)
        if publisher is not None:
            yield core.CounterMetricFamily(f"{ns}_publisher_sent", "Messages the client's publisher sent.",
                                           value=publisher.published)
        conn = getattr(client, "connection", None)
        up = conn is not None and not conn.is_closed and getattr(conn, "is_connected", True) is not False
        yield core.GaugeMetricFamily(f"{ns}_connection_up", "1 while connected to the broker.", value=int(up))
        yield core.GaugeMetricFamily(f"{ns}_connection_blocked", "1 while the broker blocks publishing.",
                                     value=int(bool(up and getattr(conn, "blocked", False))))
        stats = getattr(conn, "stats", None)
        if stats is not None and hasattr(stats, "reconnects"):
            for field, (suffix, help_) in _RECOVERY_COUNTERS.items():
                yield core.CounterMetricFamily(f"{ns}_{suffix}", help_, value=getattr(stats, field))


class ClientMetrics:
    """The Prometheus metrics of ``client`` in ``registry`` (default: a new CollectorRegistry).

    ``per_message`` (default True) sets a :class:`MessageStats` as the client's observer for the
    per-type counters and latency histograms (``max_types``, ``buckets``); without it only what the
    client counts anyway is exported (no work at all per message).
    """

    def __init__(self, client: Any, *, registry: Any = None, namespace: str = "mmate",
                 per_message: bool = True, max_types: int = DEFAULT_MAX_TYPES,
                 buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self._prom = import_prometheus()
        self.client = client
        self.messages: MessageStats | None = None
        if per_message:
            self.messages = MessageStats(max_types=max_types, buckets=buckets, name=f"metrics {namespace}")
        self.registry = registry if registry is not None else self._prom.CollectorRegistry()
        self.collector = ClientCollector(client, namespace, self.messages)
        self.registry.register(self.collector)
        if self.messages is not None:
            client.add_observer(self.messages)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry's exposition for an HTTP ``Accept`` header: ``(body, content type)`` (the
        Prometheus text format, or OpenMetrics when asked for)."""
        encoder, content_type = self._prom.exposition.choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def text(self) -> str:
        """The registry in the Prometheus text format."""
        return bytes(self._prom.generate_latest(self.registry)).decode()

    def close(self) -> None:
        """Take the metrics out of the registry and the observer off the client (idempotent)."""
        if self.collector is None:
            return
        self.registry.unregister(self.collector)
        self.collector = None  # type: ignore[assignment]
        if self.messages is not None:
            self.client.remove_observer(self.messages)


__all__ = ["ClientCollector", "ClientMetrics", "MessageStats"]
