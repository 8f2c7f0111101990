"""The dashboard feature: what it mounts, behind the admin token.

With ``DASHBOARD_TOKEN`` unset nothing is mounted (``/dashboard`` is a 404) and start-up
says so in one line. With it:

- ``GET /dashboard``: the page (``web/dashboard.html``), or the login form (401) to a
  browser without a session;
- ``POST /dashboard/login``: the form posts the token; right, it sets an HttpOnly,
  SameSite=Strict session cookie scoped to ``/dashboard`` and redirects (303) to the page;
  the token never appears in a URL, so never in an access log;
- ``POST /dashboard/logout``: forgets the cookie;
- ``GET /dashboard/api/snapshot``: the JSON the page polls every second. A script may send
  ``Authorization: Bearer <token>`` instead of the cookie.

The page polls a JSON snapshot rather than holding an SSE stream or a WebSocket: a
snapshot is a few KB, one request per second per open dashboard costs nothing next to the
media it describes, it survives every proxy and reconnect without resume logic, and it
holds no long-lived response that a drain would have to close (an open streaming
response delays aiohttp's shutdown by its timeout).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from rtchub.features.dashboard.rules import COOKIE, bearer_ok, cookie_ok, session_value
from rtchub.features.dashboard.service import Dashboard
from rtchub.net.http import HUB, json_response
from rtchub.web import WEB_DIR

__all__ = ["DASHBOARD", "setup"]

log = logging.getLogger("rtchub.dashboard")

DASHBOARD = web.AppKey("dashboard", Dashboard)
_NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
             "Referrer-Policy": "no-referrer"}
_FAILED = '<p class="login-error" role="alert">That token is not the one this server has.</p>'


def _token(request: web.Request) -> str:
    token = request.app[HUB].config.dashboard_token
    assert token is not None   # routes are mounted only with a token
    return token


def _authorized(request: web.Request) -> bool:
    token = _token(request)
    return (bearer_ok(request.headers.get("Authorization"), token)
            or cookie_ok(request.cookies.get(COOKIE), token))


def _login_page(status: int, failed: bool = False) -> web.Response:
    html = (WEB_DIR / "dashboard-login.html").read_text()
    html = html.replace("<!--error-->", _FAILED if failed else "")
    return web.Response(text=html, status=status, content_type="text/html",
                        headers=_NO_STORE)


async def page(request: web.Request) -> web.StreamResponse:
    """The dashboard, or the login form."""
    if not _authorized(request):
        return _login_page(401)
    return web.FileResponse(WEB_DIR / "dashboard.html", headers=_NO_STORE)


async def login(request: web.Request) -> web.StreamResponse:
    """Check the posted token; set the session cookie and go to the page."""
    form = await request.post()
    given = form.get("token")
    token = _token(request)
    if not isinstance(given, str) or not bearer_ok(f"Bearer {given.strip()}", token):
        request.app[HUB].stats.http_rejections["dashboard_auth"] += 1
        return _login_page(401, failed=True)
    response = web.HTTPSeeOther("/dashboard", headers=_NO_STORE)
    response.set_cookie(COOKIE, session_value(token), path="/dashboard", httponly=True,
                        samesite="Strict", secure=request.app[HUB].config.tls)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """Forget the session cookie."""
    response = web.HTTPSeeOther("/dashboard", headers=_NO_STORE)
    response.del_cookie(COOKIE, path="/dashboard")
    raise response


async def snapshot(request: web.Request) -> web.Response:
    """The live state, as JSON (401 without the token or a session)."""
    if not _authorized(request):
        request.app[HUB].stats.http_rejections["dashboard_auth"] += 1
        return json_response({"code": "unauthorized",
                              "error": "the dashboard needs its admin token"}, 401,
                             {**_NO_STORE, "WWW-Authenticate": 'Bearer realm="rtchub"'})
    return json_response(await request.app[DASHBOARD].snapshot(), headers=_NO_STORE)


def setup(app: web.Application) -> None:
    """Mount the dashboard when ``DASHBOARD_TOKEN`` is set; say it is off otherwise."""
    hub = app[HUB]
    if hub.config.dashboard_token is None:
        log.info("dashboard off: /dashboard answers 404 (set DASHBOARD_TOKEN to serve it)")
        return
    app[DASHBOARD] = Dashboard(hub.cluster_status, time.time)
    app.router.add_get("/dashboard", page)
    app.router.add_post("/dashboard/login", login)
    app.router.add_post("/dashboard/logout", logout)
    app.router.add_get("/dashboard/api/snapshot", snapshot)
    log.info("dashboard on at /dashboard (DASHBOARD_TOKEN)")
