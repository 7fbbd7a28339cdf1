"""The observability HTTP endpoints, served by aiohttp (the ``observability`` extra) on the client's loop.

- ``GET /health``: the HealthReport as Go's ``monitor.Handler`` writes it (JSON indented by 2
  spaces), 200 when healthy or degraded, 503 when unhealthy;
- ``GET /health/ready``: ``ready`` (200) or ``not ready`` (503), the checks run within 5 s (Go's
  ``ReadinessHandler``);
- ``GET /health/live``: ``alive`` (200) while the process serves (Go's ``LivenessHandler``);
- ``GET /metrics``: the Prometheus registry (text format 0.0.4, or OpenMetrics when the scraper
  asks for it).

Any other method on these paths is answered 405 (GET only, as Go; HEAD included). Bind to
``127.0.0.1`` by default; pass ``host="0.0.0.0"`` to expose the endpoints to the network.
"""
from __future__ import annotations

import logging
from typing import Any

from mmate_fast import errors
from mmate_fast.observability._health import HealthChecker

log = logging.getLogger("mmate_fast.observability")
READY_BUDGET = 5.0
_MISSING = ("the observability HTTP endpoints need aiohttp: install the 'observability' extra "
            "(pip install 'mmate-fast[observability]')")


def _import_aiohttp() -> Any:
    try:
        from aiohttp import web
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_MISSING) from exc
    return web


class ObservabilityServer:
    """Serve ``/health``, ``/health/ready``, ``/health/live`` and (with ``metrics``) ``/metrics``.

    ``health``: the HealthChecker to run; ``metrics``: anything with ``render(accept) -> (body,
    content_type)`` (a ClientMetrics), or None for no ``/metrics``. ``port=0`` picks a free port
    (:attr:`port` tells which once started). ``await server.start()`` / ``await server.close()``,
    or ``async with``.
    """

    def __init__(self, health: HealthChecker, metrics: Any = None, *, host: str = "127.0.0.1",
                 port: int = 9090, ready_budget: float = READY_BUDGET) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise errors.InvalidArgumentError(f"port must be a whole number from 0 to 65535, got {port!r}",
                                              "port")
        self._web = _import_aiohttp()
        self.health = health
        self.metrics = metrics
        self.host = host
        self.port = port
        self.ready_budget = ready_budget
        self._runner: Any = None

    def __repr__(self) -> str:
        return f"<ObservabilityServer {self.url if self._runner else 'stopped'}>"

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _app(self) -> Any:
        web = self._web
        app = web.Application()
        routes = [("/health", self._health), ("/health/ready", self._ready), ("/health/live", self._live)]
        if self.metrics is not None:
            routes.append(("/metrics", self._metrics))
        for path, handler in routes:
            app.router.add_route("*", path, handler)
        return app

    async def start(self) -> ObservabilityServer:
        """Bind and serve (returns at once; the server runs on this loop)."""
        if self._runner is not None:
            return self
        web = self._web
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise errors.ConfigurationError(
                f"cannot serve the observability endpoints on {self.host}:{self.port}: {exc} "
                f"(choose another port, or port=0 for a free one)") from exc
        self._runner = runner
        addresses = runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        log.info("observability endpoints on %s (/health, /health/ready, /health/live%s)", self.url,
                 ", /metrics" if self.metrics is not None else "")
        return self

    async def close(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> ObservabilityServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ handlers
    def _not_get(self, request: Any) -> Any:
        if request.method == "GET":
            return None
        return self._web.Response(status=405, text="method not allowed", headers={"Allow": "GET"})

    async def _health(self, request: Any) -> Any:
        refused = self._not_get(request)
        if refused is not None:
            return refused
        report = await self.health.run()
        return self._web.Response(status=200 if report.ok else 503, text=report.to_json(2),
                                  content_type="application/json")

    async def _ready(self, request: Any) -> Any:
        refused = self._not_get(request)
        if refused is not None:
            return refused
        report = await self.health.run(timeout=self.ready_budget)
        return self._web.Response(status=200 if report.ok else 503,
                                  text="ready" if report.ok else "not ready")

    async def _live(self, request: Any) -> Any:
        refused = self._not_get(request)
        if refused is not None:
            return refused
        return self._web.Response(status=200, text="alive")

    async def _metrics(self, request: Any) -> Any:
        refused = self._not_get(request)
        if refused is not None:
            return refused
        body, content_type = self.metrics.render(request.headers.get("Accept"))
        return self._web.Response(status=200, body=body, headers={"Content-Type": content_type})


__all__ = ["READY_BUDGET", "ObservabilityServer"]
