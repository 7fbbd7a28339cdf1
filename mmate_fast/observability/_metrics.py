"""Prometheus metrics of one Client: per-message metrics from the MetricsInterceptor, and everything the
client already counts read at scrape time by a custom collector (no work per message for those).

:class:`ClientCollector` exports, per consumed queue (label ``queue``): deliveries received, acked,
rejected, dead-lettered, handler errors, failures by reason, stale settles, consumer restarts,
retries (a TtlRetry failure handler's ``retried`` / ``gave_up``), handlers in flight and deliveries
waiting for a handler; for the client: messages its publisher sent, connection up / blocked, and the
RabbitMQ recovery counters (reconnects, disconnects, failed reconnect attempts, republished
publishes, channel reopens).

:class:`ClientMetrics` puts both into one ``CollectorRegistry`` (a new one per client by default, so
tests and several clients never clash; ``prometheus_client.REGISTRY`` on request).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mmate_fast.interceptors.metrics import (
    DEFAULT_BUCKETS,
    DEFAULT_MAX_TYPES,
    MetricsInterceptor,
    import_prometheus,
)

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


class ClientCollector:
    """A prometheus_client collector reading a Client's counters when scraped."""

    def __init__(self, client: Any, namespace: str = "mmate") -> None:
        self._prom = import_prometheus()
        self.client = client
        self.namespace = namespace

    def describe(self) -> list[Any]:
        return []  # the metric set depends on the client's subscriptions at scrape time

    def collect(self) -> Iterator[Any]:
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

    ``per_message`` (default True) adds a :class:`MetricsInterceptor` to the client's pipeline for
    the per-type counters and the publish/handler latency histograms (``max_types``, ``buckets`` are
    its); without it only the counters the client keeps anyway are exported (no cost per message).
    """

    def __init__(self, client: Any, *, registry: Any = None, namespace: str = "mmate",
                 per_message: bool = True, max_types: int = DEFAULT_MAX_TYPES,
                 buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self._prom = import_prometheus()
        self.client = client
        self.registry = registry if registry is not None else self._prom.CollectorRegistry()
        self.collector = ClientCollector(client, namespace)
        self.registry.register(self.collector)
        self.interceptor: MetricsInterceptor | None = None
        if per_message:
            self.interceptor = MetricsInterceptor(namespace=namespace, max_types=max_types, buckets=buckets,
                                                  registry=self.registry)
            client.use(self.interceptor)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry's exposition for an HTTP ``Accept`` header: ``(body, content type)`` (the
        Prometheus text format, or OpenMetrics when asked for)."""
        encoder, content_type = self._prom.exposition.choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def text(self) -> str:
        """The registry in the Prometheus text format."""
        return bytes(self._prom.generate_latest(self.registry)).decode()

    def close(self) -> None:
        """Take the metrics out of the registry and the interceptor out of the client's pipeline."""
        self.registry.unregister(self.collector)
        if self.interceptor is not None:
            self.interceptor.unregister()
            pipeline = getattr(self.client, "pipeline", None)
            if pipeline is not None and self.interceptor in list(pipeline):
                pipeline.remove(self.interceptor)
            self.interceptor = None


__all__ = ["ClientCollector", "ClientMetrics"]
