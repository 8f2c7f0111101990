"""Seed 001 on the wire: python-socketio at ``/socket.io/``, ``/api/status`` and ``/match``.

The Socket.IO server (protocol v5, ``async_mode="aiohttp"``) is attached to the
main aiohttp app; the front router hands every socket that is not a fast
``/ws`` upgrade to aiohttp, so both the polling and the WebSocket transport
reach it. python-socketio only carries events here: matchmaking state lives in
the core :class:`~rtchub.features.match.service.Matchmaker` behind the backplane store,
and delivery goes through the hub's courier by address (python-socketio's own
rooms are not used).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import socketio
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from rtchub.base.tasks import TaskOwner
from rtchub.features.match import wire
from rtchub.features.match.handler import Emit, MatchSession
from rtchub.features.match.service import Matchmaker
from rtchub.hub import Hub, Lifecycle
from rtchub.net.connection import next_conn_id
from rtchub.net.http import WEB_DIR, remote_of

__all__ = ["MATCH", "MatchServer", "setup"]

log = logging.getLogger("rtchub.match")

STATUS_USERS = 100
_VENDOR = {"socket.io.min.js": "text/javascript", "socket.io.min.js.map": "application/json",
           "socket.io-client.LICENSE": "text/plain"}


class MatchServer:
    """The Socket.IO server and the matchmaking sessions of its connected clients."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        limits = hub.config.limits
        self.tasks = TaskOwner("match")
        self.matchmaker = Matchmaker(hub.backplane.store, hub.courier, limits, clock=hub.clock)
        self.sessions: dict[str, MatchSession] = {}
        self._eio_sids: dict[str, str] = {}
        self._closing_all = False
        origins = hub.config.origins

        def allowed(origin: str | None, environ: object = None) -> bool:
            return origins.allows(origin)

        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", async_handlers=False, logger=False, engineio_logger=False,
            cors_allowed_origins=allowed,
            max_http_buffer_size=limits.max_message_bytes,
            ping_interval=hub.config.heartbeat, ping_timeout=hub.config.heartbeat)
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        for event in wire.CLIENT_EVENTS:
            self.sio.on(event, self._handler(event))
        self.sio.on("*", self._unknown)
        hub.stats.add_gauges("rtchub_match_sockets", "Socket.IO matchmaking connections now.",
                             lambda: {"": float(len(self.sessions))})
        hub.stats.add_counters("rtchub_match_pairs", "Pairs matched by this node.", "",
                               lambda: {"": float(self.matchmaker.pairs_made)})

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        hub = self.hub
        if hub.state is not Lifecycle.READY:
            raise socketio.exceptions.ConnectionRefusedError(
                "server is starting or draining", {"code": "capacity"})
        request = environ.get("aiohttp.request")
        remote = remote_of(request) if isinstance(request, web.Request) else "unknown"
        retry = hub.ws_upgrades.hit(remote, hub.clock())
        if retry is not None:
            hub.stats.http_rejections["ws_rate"] += 1
            raise socketio.exceptions.ConnectionRefusedError(
                f"too many connections from {remote}",
                {"code": "rate_limited", "retry_after": round(retry, 3)})
        session = MatchSession(sid, hub.courier.register(sid, self._sink(sid)), self.matchmaker,
                               self._emitter(sid), self._dropper(sid), self.tasks, hub.stats)
        self.sessions[sid] = session
        self._eio_sids[sid] = self.sio.manager.eio_sid_from_sid(sid, "/")
        hub.track(_Drainable(sid, remote, self.close_all))
        hub.stats.connections_total += 1

    def _sink(self, sid: str) -> _Sink:
        return _Sink(self.sessions, sid)

    def _emitter(self, sid: str) -> Emit:
        async def emit(event: str, data: Any) -> None:
            await self.sio.emit(event, data, to=sid)
        return emit

    def _dropper(self, sid: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def drop() -> None:
            await self.sio.disconnect(sid)
        return drop

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self.hub.courier.unregister(sid)
        session = self.sessions.pop(sid, None)
        try:
            if session is not None:
                await session.close()
        finally:
            self.hub.untrack(sid)
            self._end_poll(self._eio_sids.pop(sid, None))

    def _end_poll(self, eio_sid: str | None) -> None:
        """Answer a long-poll GET still waiting on a closed Engine.IO session.

        When a polling client closes, Engine.IO aborts the session without
        answering the GET the client left pending; it would hang until the ping
        timeout (and hold up a shutdown). An empty answer ends it now.
        """
        sock = self.sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
        queue = getattr(sock, "queue", None)
        if queue is not None:
            queue.put_nowait(None)

    def _handler(self, event: str) -> Callable[..., Coroutine[Any, Any, None]]:
        async def handle(sid: str, *args: Any) -> None:
            session = self.sessions.get(sid)
            if session is not None:
                await session.handle(event, args[0] if args else None)
        return handle

    async def _unknown(self, event: str, sid: str, *args: Any) -> None:
        session = self.sessions.get(sid)
        if session is not None:    # answered in order, after everything queued before it
            await session.handle(event, args[0] if args else None)

    async def status(self, request: web.Request) -> web.Response:
        """``GET /api/status``: queue and room counts (seed 001)."""
        s = await self.matchmaker.status(STATUS_USERS)
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return web.json_response({
            "queue": {"size": s.queue_size, "users": list(s.queue_users)},
            "rooms": {"active": s.rooms_active, "total": s.rooms_total},
            "timestamp": now.replace("+00:00", "Z"),
        })

    def close_all(self) -> None:
        """Close every Engine.IO session once (the hub's drain calls it)."""
        if self._closing_all:
            return
        self._closing_all = True
        with contextlib.suppress(RuntimeError):
            self.tasks.spawn(self.sio.eio.disconnect(), name="match-close-all")

    async def shutdown(self, app: web.Application) -> None:
        """Disconnect clients the drain missed, stop engine.io's background task.

        The hub's drain already closed every tracked client (before aiohttp stops
        reading its connections, which would stall the WebSocket close).
        """
        for sid in list(self.sessions):
            try:
                await self.sio.disconnect(sid)
            except Exception:
                log.exception("match: disconnecting %s at shutdown failed", sid)
        if self.sio.eio.service_task_handle is not None:
            await self.sio.shutdown()

    async def cleanup(self, app: web.Application) -> None:
        """Cancel the writer tasks still running."""
        await self.tasks.close()


class _Drainable:
    """A Socket.IO session or WebSocket request as the hub's drain sees it.

    Closing any of them closes every Engine.IO session at once (sessions, refused
    ones, half-done upgrades): partners are told, long polls answered.
    """

    __slots__ = ("_close_all", "_closed", "_id", "_remote")

    def __init__(self, conn_id: str, remote: str, close_all: Callable[[], None]) -> None:
        self._id = conn_id
        self._remote = remote
        self._close_all = close_all
        self._closed = False

    @property
    def id(self) -> str:
        """The Socket.IO session ID or a process-unique request ID."""
        return self._id

    @property
    def remote(self) -> str:
        """Client IP."""
        return self._remote

    @property
    def closed(self) -> bool:
        """True once close was requested."""
        return self._closed

    def send(self, data: bytes) -> None:
        """Not used: matchmaking sessions emit events, not frames."""
        raise NotImplementedError("Socket.IO connections take events, not frames")

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Disconnect (Socket.IO has no close codes)."""
        self._closed = True
        self._close_all()


class _Sink:
    """The courier's handle on one session (looked up late: the session may be gone)."""

    __slots__ = ("_sessions", "_sid")

    def __init__(self, sessions: dict[str, MatchSession], sid: str) -> None:
        self._sessions = sessions
        self._sid = sid

    def deliver(self, event: Any) -> None:
        session = self._sessions.get(self._sid)
        if session is not None:
            session.deliver(event)


MATCH = web.AppKey("match", MatchServer)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _track_websockets(server: MatchServer) -> Middleware:
    """Middleware: the drain waits for Socket.IO WebSocket requests to end.

    aiohttp stops reading connections when its runner shuts down, which would
    stall the WebSocket close handshake of a client disconnected after that.
    """
    @web.middleware
    async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not (request.path.startswith("/socket.io/")
                and request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"):
            return await handler(request)
        conn = _Drainable(next_conn_id(), remote_of(request), server.close_all)
        server.hub.track(conn)
        try:
            return await handler(request)
        finally:
            server.hub.untrack(conn.id)
    return track


async def match_page(request: web.Request) -> web.StreamResponse:
    """The matchmaking page."""
    return web.FileResponse(WEB_DIR / "match.html", headers={"Cache-Control": "no-cache"})


async def vendor(request: web.Request) -> web.StreamResponse:
    """Vendored third-party browser files (the stock socket.io client and its licence)."""
    name = request.match_info["name"]
    kind = _VENDOR.get(name)
    path = WEB_DIR / "vendor" / name
    if kind is None or not path.is_file():
        raise web.HTTPNotFound(text="not found")
    return web.FileResponse(path, headers={"Content-Type": kind,
                                           "Cache-Control": "public, max-age=3600"})


def setup(app: web.Application, hub: Hub) -> None:
    """Attach Socket.IO matchmaking, ``/api/status`` and the ``/match`` page to ``app``."""
    server = MatchServer(hub)
    app[MATCH] = server
    server.sio.attach(app, socketio_path="socket.io")
    app.router.add_get("/api/status", server.status)
    app.router.add_get("/match", match_page)
    app.router.add_get("/vendor/{name}", vendor)
    app.middlewares.append(_track_websockets(server))
    app.on_shutdown.append(server.shutdown)
    app.on_cleanup.append(server.cleanup)
