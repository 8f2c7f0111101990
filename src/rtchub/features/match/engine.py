"""The Socket.IO server as matchmaking needs it: only seed 001's events dispatch, every
Engine.IO session counts against its IP, and handshakes pass the per-IP limits.

python-socketio dispatches an event packet by its name to whatever handler has that
name, reserved ones included: ``42["disconnect"]`` ran the disconnect handler of a
connected client (its partner was told ``stop-by-remote-user``), and ``42["*","<sid>",{}]``
reached the catch-all handler with the attacker's arguments shifted into the victim's
socket ID. :class:`MatchSocketServer` lets an event packet through only when its name is
one of seed 001's client events; any other name (reserved, unknown, not a string) is
handed to ``refuse`` and answered with ``unknown_type`` in order with the client's other
events. ``connect`` and ``disconnect`` still reach their handlers, but only from
python-socketio's own connection handling.

An Engine.IO handshake (a request to ``/socket.io/`` without ``sid``) allocates a session
before any Socket.IO packet: :func:`handshake_limits` puts it through ``WS_RATE_PER_MIN``,
``HTTP_RATE_PER_MIN`` and ``MAX_CONNS_PER_IP`` first (429 otherwise), and the server counts
each session against its IP until Engine.IO ends it, whatever ends it (close, ping
timeout, transport error).

Engine.IO's WebSocket transport runs without permessage-deflate: python-engineio's aiohttp
driver builds its ``WebSocketResponse`` with aiohttp's default ``compress=True``, which
accepts the deflate that the stock ``socket.io-client`` (Node's ``ws``) and browsers offer.
On seed 001's small frames deflate cost a fifth of the server's CPU per match and doubled
the client's (docs/benchmarks.md), for bytes that do not matter next to the media the
signaling sets up; the Node ``socket.io`` server declines it by default too.
:class:`PlainWebSocket` is the driver's class with ``compress=False``.

The overrides are of python-socketio 5.18's private dispatch methods and of
python-engineio's driver table (both pinned exactly in pyproject.toml);
:func:`check_socketio` fails start-up if they are gone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from importlib.metadata import version
from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as eio_aiohttp

from rtchub.base.clientip import ip_key
from rtchub.errors import RateLimited
from rtchub.features.match.frames import OrjsonPacket, decode_event
from rtchub.hub import Hub
from rtchub.net.http import error_response, remote_of

__all__ = ["MatchSocketServer", "PlainWebSocket", "check_socketio", "handshake_limits"]

Refuse = Callable[[str, str], None]   # (socket ID, event name as text) -> answer it
Dispatch = Callable[[str, str, list[Any]], None]   # (socket ID, event, arguments)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OVERRIDDEN = ("_handle_event", "_handle_eio_message", "_handle_eio_connect",
               "_handle_eio_disconnect")
_CONNS_RETRY = 5.0


def check_socketio() -> None:
    """Raise RuntimeError unless python-socketio still has the methods overridden here."""
    missing = [m for m in _OVERRIDDEN if not callable(getattr(socketio.AsyncServer, m, None))]
    if "websocket" not in getattr(eio_aiohttp, "_async", {}):
        missing.append("engineio.async_drivers.aiohttp._async['websocket']")
    if missing:
        raise RuntimeError(f"python-socketio {version('python-socketio')} has no "
                           f"{', '.join(missing)}: rtchub's Socket.IO guard needs them")


class PlainWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]  # untyped library
    """python-engineio's aiohttp WebSocket transport without permessage-deflate."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size,
                                           compress=False)
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock

    async def send(self, message: str | bytes) -> None:
        """Send one frame (the driver's version asks ``inspect`` which call to await)."""
        if isinstance(message, str):
            await self._sock.send_str(message)
        else:
            await self._sock.send_bytes(message)


class MatchSocketServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped library
    """An AsyncServer that dispatches only ``events`` and counts sessions per IP.

    A plain event frame of a connected client (``42[...]``: default namespace, no ack,
    no attachments) whose name is one of ``events`` goes straight to ``dispatch``,
    decoded once with orjson (:mod:`~rtchub.features.match.frames`); python-socketio's
    own dispatch (a packet object that scans the payload for bytes, a log line, a
    handler lookup and three awaits) handles every other frame.
    """

    def __init__(self, hub: Hub, events: Collection[str], refuse: Refuse,
                 dispatch: Dispatch, **kwargs: Any) -> None:
        check_socketio()
        super().__init__(serializer=OrjsonPacket, **kwargs)
        # (per instance: the driver's table is python-engineio's module state)
        self.eio._async = dict(self.eio._async, websocket=PlainWebSocket)
        self._hub = hub
        self._events = frozenset(events)
        self._refuse = refuse
        self._dispatch = dispatch
        self._remotes: dict[str, str] = {}   # Engine.IO session -> client IP

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        decoded = decode_event(data) if eio_sid not in self._binary_packet else None
        if decoded is not None and decoded[0] in self._events:
            manager = self.manager
            sid = manager.sid_from_eio_sid(eio_sid, "/")
            if sid is not None and manager.is_connected(sid, "/"):
                self._dispatch(sid, decoded[0], decoded[1])
            return
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any
                            ) -> None:
        name = data[0] if isinstance(data, list) and data else None
        if isinstance(name, str) and name in self._events:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace or "/")
        if sid is not None and self.manager.is_connected(sid, namespace or "/"):
            self._refuse(sid, name if isinstance(name, str) else repr(name)[:40])

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        request = environ.get("aiohttp.request")
        remote = remote_of(request) if isinstance(request, web.Request) else "unknown"
        self._remotes[eio_sid] = remote
        self._hub.connection_opened(remote)
        await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            remote = self._remotes.pop(eio_sid, None)
            if remote is not None:
                self._hub.connection_closed(remote)

    @property
    def sessions(self) -> int:
        """Engine.IO sessions open now."""
        return len(self._remotes)


def handshake_limits(hub: Hub, prefix: str = "/socket.io/") -> Callable[..., Any]:
    """Middleware: an Engine.IO handshake (no ``sid`` in the query) passes the per-IP
    connection count and the WebSocket and HTTP rates before Engine.IO sees it."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (not request.path.startswith(prefix) or "sid" in request.query
                or not hub.config.origins.allows(request.headers.get("Origin"))):
            return await handler(request)   # (Engine.IO refuses a bad origin itself)
        remote = remote_of(request)
        key = ip_key(remote)
        now = hub.clock()
        if hub.ip_connections.full(key):
            hub.stats.http_rejections["conns_per_ip"] += 1
            return error_response(RateLimited(
                f"{remote} holds {hub.ip_connections.limit} connections already "
                "(MAX_CONNS_PER_IP)", _CONNS_RETRY))
        for window, reason in ((hub.ws_upgrades, "ws_rate"), (hub.http_requests, "http_rate")):
            retry = window.hit(key, now)
            if retry is not None:
                hub.stats.http_rejections[reason] += 1
                return error_response(RateLimited(
                    f"too many Socket.IO handshakes from {remote}", retry))
        return await handler(request)

    return limit
