"""The operator's endpoints: liveness, readiness and metrics."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from rtchub.base.metrics import new_registry, render
from rtchub.net.http import HUB, json_response, prefers_json

__all__ = ["JSON_METRICS", "REGISTRY", "add_ops_routes"]

REGISTRY = web.AppKey("registry", object)
# A feature's JSON view of /metrics for clients that ask for JSON (seed 002's shape).
JSON_METRICS: web.AppKey[Callable[[], dict[str, object]]] = web.AppKey("json_metrics")


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 503 while starting, draining, or while the backplane is unreachable."""
    hub = request.app[HUB]
    if hub.ready:
        return web.Response(text="ready")
    reason = hub.state.value if hub.state.value != "ready" else "backplane unreachable"
    return web.Response(status=503, text=f"not ready: {reason}")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition (JSON clients get a feature's JSON view when one is set)."""
    json_view = request.app.get(JSON_METRICS)
    if json_view is not None and prefers_json(request):
        return json_response(json_view())
    return web.Response(body=render(request.app[REGISTRY]),  # type: ignore[arg-type]
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def add_ops_routes(app: web.Application) -> None:
    """``/healthz``, ``/readyz`` and the metrics route (``METRICS_ROUTE``)."""
    hub = app[HUB]
    app[REGISTRY] = new_registry(hub.stats)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(hub.config.metrics_route, metrics)
