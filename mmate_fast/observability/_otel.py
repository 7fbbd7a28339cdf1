"""OpenTelemetry metrics of a Client, on the OTel meter API (the ``otel`` extra; export with the SDK).

    metrics = OTelMetrics(client, meter_provider=provider)   # metrics.close() to stop

It is a MessageObserver (:mod:`mmate_fast.messaging.observer`): the publisher and the subscriber call
it directly, no interceptor, so plain handlers stay inline. Per message (attribute
``messaging.message.type``, bounded as the Prometheus metrics: the first ``max_types`` types, then
``other``): counters ``mmate.messages.published``, ``.publish_failed``, ``.consumed``, ``.failed``;
histograms ``mmate.publish.duration`` and ``mmate.handler.duration`` (seconds).

Read from the client when the reader collects (observable instruments, no work per message), per
consumed queue (attribute ``messaging.destination.name``): ``mmate.deliveries.received``,
``.acked``, ``.rejected``, ``.dead_lettered``, ``mmate.handler.errors``, ``mmate.consumer.restarts``
and the gauge ``mmate.handlers.in_flight``; ``mmate.connection.reconnects`` and the gauge
``mmate.connection.up``.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mmate_fast._version import __version__
from mmate_fast.interceptors._types import type_name
from mmate_fast.interceptors.metrics import DEFAULT_MAX_TYPES, TypeLabels

TYPE_ATTR = "messaging.message.type"
QUEUE_ATTR = "messaging.destination.name"
_MISSING = ("OTelMetrics needs OpenTelemetry: install the 'otel' extra "
            "(pip install 'mmate-fast[otel]', i.e. opentelemetry-api and opentelemetry-sdk)")
#: subscription stats field -> (instrument name, description)
_OBSERVED = {
    "received": ("mmate.deliveries.received", "Deliveries received from the broker."),
    "acked": ("mmate.deliveries.acked", "Deliveries acknowledged."),
    "rejected": ("mmate.deliveries.rejected", "Deliveries rejected without requeue."),
    "dead_lettered": ("mmate.deliveries.dead_lettered", "Deliveries whose record was kept in their DLQ."),
    "handler_errors": ("mmate.handler.errors", "Handler calls that raised."),
    "consumer_restarts": ("mmate.consumer.restarts", "Consumers restarted after a cancel."),
}


def _import_otel() -> Any:
    try:
        from opentelemetry import metrics
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_MISSING) from exc
    return metrics


class OTelMetrics:
    """Record publish and handler metrics on an OpenTelemetry meter (see the module docstring).

    ``client``: observe it (added as its observer; :meth:`close` removes it) and its subscription and
    connection counters; ``meter_provider``: default the global one
    (``opentelemetry.metrics.set_meter_provider``).
    """

    def __init__(self, client: Any = None, *, meter_provider: Any = None,
                 meter_name: str = "mmate_fast", max_types: int = DEFAULT_MAX_TYPES) -> None:
        metrics = _import_otel()
        self._otel_metrics = metrics
        self.client = client
        self.labels = TypeLabels(max_types, "OTelMetrics")
        meter = metrics.get_meter(meter_name, __version__, meter_provider=meter_provider)
        self.meter = meter
        msg = "{message}"
        self._published = meter.create_counter("mmate.messages.published", msg, "Messages published.")
        self._publish_failed = meter.create_counter("mmate.messages.publish_failed", msg,
                                                    "Publishes that failed.")
        self._consumed = meter.create_counter("mmate.messages.consumed", msg,
                                              "Deliveries whose handlers ran without error.")
        self._failed = meter.create_counter("mmate.messages.failed", msg, "Deliveries whose handler raised.")
        self._publish_duration = meter.create_histogram("mmate.publish.duration", "s",
                                                        "Publish latency (incl. the broker confirm).")
        self._handler_duration = meter.create_histogram("mmate.handler.duration", "s",
                                                        "Handler duration per delivery.")
        self._attrs: dict[str, dict[str, str]] = {}
        if client is not None:
            for field, (name, description) in _OBSERVED.items():
                meter.create_observable_counter(name, [self._observer(field)], msg, description)
            meter.create_observable_gauge("mmate.handlers.in_flight", [self._in_flight], "{call}",
                                          "Async handler calls running now.")
            meter.create_observable_counter("mmate.connection.reconnects", [self._reconnects],
                                            "{reconnect}", "Reconnects of the RabbitMQ connection.")
            meter.create_observable_gauge("mmate.connection.up", [self._up], "1", "1 while connected.")
            client.add_observer(self)

    def __repr__(self) -> str:
        return "<OTelMetrics>"

    def close(self) -> None:
        """Stop observing the client (the meter's instruments stay with their provider)."""
        if self.client is not None:
            self.client.remove_observer(self)

    def _attributes(self, type_: str) -> dict[str, str]:
        attrs = self._attrs.get(type_)
        if attrs is None:
            label = self.labels(type_)
            attrs = self._attrs.get(label)
            if attrs is None:
                attrs = self._attrs[label] = {TYPE_ATTR: label}
            if label == type_:
                self._attrs[type_] = attrs
        return attrs

    # ------------------------------------------------------------------ MessageObserver
    def published(self, message: Any, seconds: float, error: BaseException | None) -> None:
        attrs = self._attributes(type_name(message))
        if error is None:
            self._published.add(1, attrs)
            self._publish_duration.record(seconds, attrs)
        else:
            self._publish_failed.add(1, attrs)

    def handled(self, type_name: str, seconds: float, error: BaseException | None) -> None:
        attrs = self._attributes(type_name)
        (self._consumed if error is None else self._failed).add(1, attrs)
        self._handler_duration.record(seconds, attrs)

    # ------------------------------------------------------------------ observed at collection
    def _subscriptions(self) -> list[Any]:
        return list(getattr(getattr(self.client, "subscriber", None), "subscriptions", ()) or ())

    def _observer(self, field: str) -> Any:
        observation = self._otel_metrics.Observation

        def observe(options: Any) -> Iterator[Any]:
            for sub in self._subscriptions():
                yield observation(getattr(sub.stats, field), {QUEUE_ATTR: sub.queue})

        return observe

    def _in_flight(self, options: Any) -> Iterator[Any]:
        for sub in self._subscriptions():
            yield self._otel_metrics.Observation(sub.in_flight, {QUEUE_ATTR: sub.queue})

    def _reconnects(self, options: Any) -> Iterator[Any]:
        stats = getattr(getattr(self.client, "connection", None), "stats", None)
        if stats is not None and hasattr(stats, "reconnects"):
            yield self._otel_metrics.Observation(stats.reconnects)

    def _up(self, options: Any) -> Iterator[Any]:
        conn = getattr(self.client, "connection", None)
        up = conn is not None and not conn.is_closed and getattr(conn, "is_connected", True) is not False
        yield self._otel_metrics.Observation(int(up))


__all__ = ["QUEUE_ATTR", "TYPE_ATTR", "OTelMetrics"]
