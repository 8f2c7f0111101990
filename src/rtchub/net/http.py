"""What every HTTP handler shares: the hub under a typed key, the client's IP, JSON errors
in the one vocabulary, content negotiation, and the per-IP HTTP rate limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import hdrs, web

from rtchub.base.clientip import ip_key
from rtchub.errors import RateLimited, RtcHubError
from rtchub.hub import Hub

__all__ = ["HUB", "Handler", "error_response", "json_response", "prefers_json", "rate_limit",
           "remote_of"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HUB = web.AppKey("hub", Hub)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    """A JSON answer encoded with orjson."""
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def error_response(err: RtcHubError) -> web.Response:
    """An HTTP error in the one vocabulary: JSON ``{code, error}`` with the error's status,
    its headers (426's ``Sec-WebSocket-Version``) and ``Retry-After`` when it has one."""
    headers = dict(getattr(err, "headers", {}))
    retry = getattr(err, "retry_after", None)
    if retry is not None:
        headers["Retry-After"] = str(max(1, round(retry + 0.5)))
    return json_response({"code": err.code, "error": err.message}, err.http_status, headers)


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
    peer = request.transport.get_extra_info("peername") if request.transport else None
    ip = peer[0] if isinstance(peer, tuple) else None
    return request.app[HUB].client_ip(ip, request.headers.get(hdrs.X_FORWARDED_FOR))


def rate_limit(exempt: frozenset[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware: HTTP_RATE_PER_MIN per client IP, except for the ``exempt`` paths."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in exempt:
            return await handler(request)
        hub = request.app[HUB]
        retry = hub.http_requests.hit(ip_key(remote_of(request)), hub.clock())
        if retry is not None:
            hub.stats.http_rejections["http_rate"] += 1
            return error_response(RateLimited("too many requests", retry))
        return await handler(request)

    return limit
