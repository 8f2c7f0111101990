"""The browser app (seed 000's client) and what every page fetches.

``GET /`` serves the app, or seed 001's JSON status to clients that prefer JSON;
``/{name}`` serves the app's files; ``/api/rtc-config`` the ``RTCConfiguration`` browsers
should use (``RTC_CONFIG_JSON``, plus a TURN server with fresh time-limited credentials when
``TURN_URLS`` is set).
"""

from __future__ import annotations

import re
import time
from typing import Final

from aiohttp import web

from rtchub.features.site.turn import rtc_configuration
from rtchub.net.http import HUB, json_response, prefers_json
from rtchub.web import WEB_DIR

__all__ = ["add_asset_route", "setup"]
_ASSET = re.compile(r"^(styles\.css|app(\.[A-Za-z0-9_-]+)?\.js|[A-Za-z0-9_.-]+\.(svg|png|ico|"
                    r"d\.ts|css|js|html))$")
_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
                 ".ts": "text/plain"}


async def index(request: web.Request) -> web.StreamResponse:
    """The browser app, or seed 001's JSON status for JSON clients."""
    if prefers_json(request):
        return json_response({"status": "OK", "message": "rtchub is running"})
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


async def rtc_config(request: web.Request) -> web.Response:
    """The RTCConfiguration browsers should use (RTC_CONFIG_JSON, with TURN credentials
    minted for this request when TURN is configured); never cached."""
    config = request.app[HUB].config
    body = rtc_configuration(config.rtc_config, config.turn, time.time())
    return json_response(body, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    """Mount the lobby page and the RTC configuration."""
    app.router.add_get("/", index)
    app.router.add_get("/api/rtc-config", rtc_config)


def add_asset_route(app: web.Application) -> None:
    """The catch-all for app files; register it after every other single-segment route."""
    app.router.add_get("/{name}", asset)
