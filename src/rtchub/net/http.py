"""aiohttp handlers for rtchub's plain HTTP endpoints and the WebSocket fallback.

Each handler reads the hub from the app under a typed key; none holds state.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiohttp import hdrs, web

from rtchub.base.metrics import render
from rtchub.errors import CodesExhausted, RateLimited, RtcHubError
from rtchub.hub import Hub
from rtchub.net.clientip import client_ip
from rtchub.net.httpws import serve_websocket

__all__ = ["HUB", "PAIR_WEBSOCKET", "REGISTRY", "add_asset_route", "add_routes",
           "error_response", "prefers_json", "rate_limit", "remote_of"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# /socket.io/: one Socket.IO session makes a request per long poll; its connects are
# limited by WS_RATE_PER_MIN and its events by the MATCH_*_RATE settings instead
_EXEMPT = frozenset({"/healthz", "/readyz", "/health", "/socket.io/"})

HUB = web.AppKey("hub", Hub)
REGISTRY = web.AppKey("registry", object)
# the pairing feature's /ws handler, taking upgrades with ``appID`` in the query
PAIR_WEBSOCKET: web.AppKey[Handler] = web.AppKey("pair_websocket")
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
_ASSET = re.compile(r"^(styles\.css|app(\.[A-Za-z0-9_-]+)?\.js|[A-Za-z0-9_.-]+\.(svg|png|ico|"
                    r"d\.ts|css|js|html))$")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
          ".ts": "text/plain"}


def prefers_json(request: web.Request) -> bool:
    """True when the Accept header ranks application/json above text/html."""
    accept = request.headers.get(hdrs.ACCEPT, "")
    best_json = best_html = -1.0
    for part in accept.split(","):
        fields = part.strip().split(";")
        media = fields[0].strip().lower()
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media == "application/json":
            best_json = max(best_json, q)
        elif media in ("text/html", "*/*", "text/*"):
            best_html = max(best_html, q - (0.001 if media != "text/html" else 0))
    return best_json > 0 and best_json >= best_html


def remote_of(request: web.Request) -> str:
    """The client IP of a request, honouring TRUST_PROXY."""
    hub = request.app[HUB]
    peer = request.transport.get_extra_info("peername") if request.transport else None
    ip = peer[0] if isinstance(peer, tuple) else None
    return client_ip(ip, request.headers.get("X-Forwarded-For"), hub.config.trusted_proxies)


def error_response(err: RtcHubError) -> web.Response:
    """An HTTP error in the one vocabulary: JSON {code, error}."""
    headers = {}
    retry = getattr(err, "retry_after", None)
    if isinstance(err, RateLimited | CodesExhausted) and retry is not None:
        headers["Retry-After"] = str(max(1, round(retry + 0.5)))
    return web.json_response({"code": err.code, "error": err.message}, status=err.http_status,
                             headers=headers, dumps=lambda o: orjson.dumps(o).decode())


async def index(request: web.Request) -> web.StreamResponse:
    """The browser app, or seed 001's JSON status for JSON clients."""
    if prefers_json(request):
        return web.json_response({"status": "OK", "message": "rtchub is running"})
    return web.FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def asset(request: web.Request) -> web.StreamResponse:
    """Files of the browser app, served as they are."""
    name = request.match_info["name"]
    path = WEB_DIR / name
    if not _ASSET.match(name) or not path.is_file():
        raise web.HTTPNotFound(text="not found")
    suffix = ".ts" if name.endswith(".d.ts") else path.suffix
    return web.FileResponse(path, headers={"Content-Type": _TYPES.get(suffix, "text/plain"),
                                           "Cache-Control": "no-cache"})


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
    """Prometheus text exposition (JSON clients get seed 002's shape when registered)."""
    hub = request.app[HUB]
    json_view = hub.json_metrics
    if json_view is not None and prefers_json(request):
        return web.json_response(json_view())
    return web.Response(body=render(request.app[REGISTRY]),  # type: ignore[arg-type]
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def rtc_config(request: web.Request) -> web.Response:
    """The RTCConfiguration browsers should use (RTC_CONFIG_JSON)."""
    return web.json_response(dict(request.app[HUB].config.rtc_config))


async def websocket(request: web.Request) -> web.StreamResponse:
    """WebSocket endpoints on aiohttp (sockets that were plain HTTP first)."""
    hub = request.app[HUB]
    pairing = request.app.get(PAIR_WEBSOCKET)
    if pairing is not None and "appID" in request.query:
        return await pairing(request)
    if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket":
        return web.Response(status=426, text="WebSocket upgrade expected",
                            headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    remote = remote_of(request)
    try:
        factory = hub.admit(request.path, request.headers.get(hdrs.ORIGIN), remote)
    except RtcHubError as err:
        return error_response(err)
    limits = hub.config.limits
    return await serve_websocket(request, factory, remote, hub.stats,
                                 heartbeat=hub.config.heartbeat,
                                 max_message=limits.max_message_bytes,
                                 send_buffer=limits.send_buffer,
                                 send_timeout=limits.send_timeout)


def add_routes(app: web.Application, hub: Hub) -> None:
    """Register the foundation's routes."""
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(hub.config.metrics_route, metrics)
    app.router.add_get("/api/rtc-config", rtc_config)
    for path in hub.endpoints:
        app.router.add_get(path, websocket)


def add_asset_route(app: web.Application) -> None:
    """The catch-all for app files; register it after every other single-segment route."""
    app.router.add_get("/{name}", asset)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP_RATE_PER_MIN per client IP (health, readiness, metrics, Socket.IO are exempt)."""
    hub = request.app[HUB]
    if request.path in _EXEMPT or request.path == hub.config.metrics_route:
        return await handler(request)
    retry = hub.http_requests.hit(remote_of(request), hub.clock())
    if retry is not None:
        hub.stats.http_rejections["http_rate"] += 1
        return error_response(RateLimited("too many requests", retry))
    return await handler(request)
