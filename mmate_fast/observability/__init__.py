"""Observability of a Mmate service: health checks, Prometheus and OpenTelemetry metrics, HTTP endpoints.

    obs = await client.serve_observability(port=9090)   # /health, /health/ready, /health/live, /metrics

or piece by piece: :class:`HealthChecker` (a registry of checks, sync or async, each with a timeout;
:func:`add_client_checks` registers the client's connection, channels, consumers, queue depth,
consumer lag and DLQ depth checks), :class:`ClientMetrics` (prometheus_client registry),
:class:`OTelMetrics` (OpenTelemetry meter instruments), :class:`TracingObserver` (head-sampled
OpenTelemetry tracing) and :class:`ObservabilityServer` (aiohttp).
Health reports have mmate-go's JSON shape. Needs the ``observability`` extra (prometheus_client,
aiohttp); OTelMetrics the ``otel`` extra.
"""
from __future__ import annotations

from mmate_fast.observability._bundle import Observability
from mmate_fast.observability._checks import (
    ConsumerLag,
    QueueInspector,
    Thresholds,
    add_client_checks,
    check_channels,
    check_connection,
    check_consumers,
    check_dead_letters,
    check_queues,
    queue_status,
)
from mmate_fast.observability._health import (
    CheckResult,
    HealthChecker,
    HealthReport,
    HealthStatus,
)
from mmate_fast.observability._http import ObservabilityServer
from mmate_fast.observability._metrics import ClientCollector, ClientMetrics, MessageStats
from mmate_fast.observability._otel import OTelMetrics
from mmate_fast.observability._tracing import TracingObserver

__all__ = [
    "CheckResult",
    "ClientCollector",
    "ClientMetrics",
    "ConsumerLag",
    "HealthChecker",
    "HealthReport",
    "HealthStatus",
    "MessageStats",
    "OTelMetrics",
    "Observability",
    "ObservabilityServer",
    "QueueInspector",
    "Thresholds",
    "TracingObserver",
    "add_client_checks",
    "check_channels",
    "check_connection",
    "check_consumers",
    "check_dead_letters",
    "check_queues",
    "queue_status",
]
