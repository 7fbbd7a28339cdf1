"""One object for a service's observability: health checks, Prometheus metrics and the HTTP endpoints."""
from __future__ import annotations

from typing import Any

from mmate_fast._version import __version__
from mmate_fast.interceptors.metrics import DEFAULT_BUCKETS, DEFAULT_MAX_TYPES
from mmate_fast.observability._checks import Thresholds, add_client_checks
from mmate_fast.observability._health import DEFAULT_TIMEOUT, HealthChecker
from mmate_fast.observability._http import ObservabilityServer
from mmate_fast.observability._metrics import ClientMetrics


class Observability:
    """Health checks (:attr:`health`, the built-in ones of the client plus yours), Prometheus
    metrics (:attr:`metrics`, unless ``metrics=False``) and the HTTP endpoints (:attr:`server`) of
    one client. ``client.serve_observability(port=...)`` creates, starts and closes it with the client.

    ``registry``: a prometheus_client registry (default: a new one for this client);
    ``per_message``: per-type counters and latency histograms through an interceptor (see
    ClientMetrics); ``thresholds``: when the queue, DLQ and lag checks stop saying healthy;
    ``check_timeout``: seconds each check may take.
    """

    def __init__(self, client: Any, *, host: str = "127.0.0.1", port: int = 9090, metrics: bool = True,
                 registry: Any = None, namespace: str = "mmate", per_message: bool = True,
                 max_types: int = DEFAULT_MAX_TYPES, buckets: tuple[float, ...] = DEFAULT_BUCKETS,
                 thresholds: Thresholds | None = None, check_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.client = client
        self.health = HealthChecker(timeout=check_timeout, metadata={
            "service_name": client.service_name, "library": "mmate_fast", "version": __version__})
        self._inspector = add_client_checks(self.health, client, thresholds=thresholds)
        self.metrics = ClientMetrics(client, registry=registry, namespace=namespace, per_message=per_message,
                                     max_types=max_types, buckets=buckets) if metrics else None
        self.server = ObservabilityServer(self.health, self.metrics, host=host, port=port)

    def __repr__(self) -> str:
        return f"<Observability {self.client.service_name!r} {self.server!r}>"

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> Observability:
        await self.server.start()
        return self

    async def close(self) -> None:
        """Stop serving, close the checks' channel, take the metrics out of the pipeline and registry."""
        await self.server.close()
        await self._inspector.close()
        if self.metrics is not None:
            self.metrics.close()

    async def __aenter__(self) -> Observability:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["Observability"]
