"""Seed 001 on the wire: python-socketio at ``/socket.io/``, ``/api/status`` and ``/match``.

A WebSocket-only client whose upgrade is its socket's first request is served on the
fast path (:mod:`~rtchub.features.match.eio`, the endpoint registered below). The
Socket.IO server (protocol v5, ``async_mode="aiohttp"``) is attached to the main aiohttp
app for everything else at ``/socket.io/``: long-polling, the upgrade of a polling
session, a WebSocket upgrade on a kept-alive socket. python-socketio only
carries events here: each client's events are applied in order by its own serial
executor (the one every dialect uses), matchmaking state lives in the
:class:`~rtchub.features.match.service.Matchmaker` behind the backplane store, and
delivery goes through the courier by address (python-socketio's rooms are not used).
What a client is sent goes straight into its Engine.IO session's queue (rendered once with
orjson, :mod:`~rtchub.features.match.frames`); a client whose queue passes
``WS_SEND_BUFFER`` packets (it stopped reading) is disconnected.
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

from rtchub.base.faultlog import FaultLog
from rtchub.base.ratelimit import Window
from rtchub.base.tasks import TaskOwner
from rtchub.errors import RtcHubError, UnknownType
from rtchub.features.match import wire
from rtchub.features.match.eio import EIO_PATH, EioCodec, EioDialect, accepts
from rtchub.features.match.engine import MatchSocketServer, handshake_limits
from rtchub.features.match.events import EVENTS
from rtchub.features.match.frames import event_message
from rtchub.features.match.handler import MatchSession
from rtchub.features.match.rules import RECORDS
from rtchub.features.match.service import Matchmaker
from rtchub.hub import Drainable, Hub, Lifecycle
from rtchub.net.executor import SerialExecutor
from rtchub.net.http import HUB, json_response
from rtchub.net.router import ROUTER, Endpoint
from rtchub.web import WEB_DIR

__all__ = ["MATCH", "MatchServer", "setup"]

log = logging.getLogger("rtchub.match")

STATUS_USERS = 100
_VENDOR = {"socket.io.min.js": "text/javascript", "socket.io.min.js.map": "application/json",
           "socket.io-client.LICENSE": "text/plain"}


_EVENT_INDEX = dict.fromkeys(EVENTS, 0)  # every matchmaking event goes to the client itself


class _Client:
    """One Socket.IO connection: its session, serial executor and rate windows."""

    __slots__ = ("_server", "closed", "eio_sid", "errors", "executor", "rate", "session",
                 "sid")

    def __init__(self, server: MatchServer, sid: str, eio_sid: str) -> None:
        hub = server.hub
        self._server = server
        self.sid = sid
        self.eio_sid = eio_sid
        self.closed = False
        self.session = MatchSession(sid, hub.courier.register(sid, (self,), _EVENT_INDEX),
                                    server.matchmaker, self.emit, hub.stats)
        self.executor = SerialExecutor(hub.tasks.spawn, self._failed,
                                       hub.config.limits.pending_max, sid)
        self.rate = Window(*hub.config.limits.ws_msg_rate)
        self.errors = Window(*hub.config.limits.ws_error_rate)

    def flooding(self) -> bool:
        """Count one event against WS_MSG_RATE; past it, disconnect (True)."""
        if self.closed or self.rate.hit(self._server.hub.clock()) is None:
            return self.closed
        self._drop(self.rate, "events", "WS_MSG_RATE", "msg_rate")
        return True

    def _drop(self, window: Window, what: str, setting: str, label: str) -> None:
        server = self._server
        log.info("match: %s sent more than %d %s in %gs (%s); disconnecting", self.sid,
                 window.limit, what, window.window, setting)
        server.hub.stats.closes[label] += 1
        self.closed = True
        with contextlib.suppress(RuntimeError):
            server.tasks.spawn(server.sio.disconnect(self.sid), name="match-drop")

    def deliver(self, event: object) -> None:
        """The courier's entry (it routes only matchmaking events here)."""
        assert isinstance(event, EVENTS)
        self.session.deliver(event)

    def _failed(self, err: RtcHubError, event: object) -> None:
        self.session.reply_error(err, event if isinstance(event, str) else None)
        if not self.closed and self.errors.hit(self._server.hub.clock()) is not None:
            self._drop(self.errors, "refused events", "WS_ERROR_RATE", "error_rate")

    def emit(self, event: str, data: Any) -> None:
        """Queue one event for this client, in order; drop a client that stopped reading.

        The frame goes straight into the Engine.IO session's queue, which its transport
        (WebSocket writer or long-poll) drains, in order with python-socketio's own
        packets; no task per event.
        """
        if self.closed:
            return
        server = self._server
        sock = server.sio.eio.sockets.get(self.eio_sid)
        if sock is None or sock.closed or sock.closing:
            return
        queue = sock.queue
        if queue.qsize() >= server.send_buffer:
            log.info("match: %s is not reading (%d events queued); disconnecting", self.sid,
                     queue.qsize())
            server.hub.stats.closes["policy"] += 1
            self.closed = True
            with contextlib.suppress(RuntimeError):
                server.tasks.spawn(server.sio.disconnect(self.sid), name="match-drop")
            return
        queue.put_nowait(event_message(event, data))


class MatchServer:
    """The Socket.IO server and the matchmaking sessions of its connected clients."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        limits = hub.config.limits
        self.tasks = TaskOwner("match")
        self.send_buffer = limits.send_buffer
        hub.codec.register(*RECORDS, *EVENTS)
        self.matchmaker = Matchmaker(hub.backplane.store, hub.courier, limits, clock=hub.clock)
        hub.backplane.on_sweep(self.matchmaker.sweep_node)
        self.clients: dict[str, _Client] = {}
        # the WebSocket-only clients the fast path serves (eio.py)
        self.fast = EioDialect(self.matchmaker, hub.stats, ping_interval=hub.config.heartbeat,
                               max_payload=limits.max_message_bytes)
        self._closing_all = False
        origins = hub.config.origins

        def allowed(origin: str | None, environ: object = None) -> bool:
            return origins.allows(origin)

        burst, period = hub.config.log_fault_rate
        faults = FaultLog(logging.getLogger("rtchub.socketio"), hub.clock, burst=burst,
                          period=period, errors_are_faults=True)
        self.sio = MatchSocketServer(
            hub, wire.CLIENT_EVENTS, self._refused,
            self._dispatch, async_mode="aiohttp", async_handlers=False, logger=faults,
            engineio_logger=faults,
            cors_allowed_origins=allowed,
            max_http_buffer_size=limits.max_message_bytes,
            ping_interval=hub.config.heartbeat, ping_timeout=hub.config.heartbeat)
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        for event in wire.CLIENT_EVENTS:
            self.sio.on(event, self._handler(event))
        hub.stats.add_gauges("rtchub_match_sockets", "Socket.IO matchmaking connections now.",
                             lambda: {"": float(len(self.clients) + len(self.fast.sessions))})
        hub.stats.add_counters("rtchub_match_pairs", "Pairs matched by this node.", "",
                               lambda: {"": float(self.matchmaker.pairs_made)})

    @property
    def sessions(self) -> dict[str, MatchSession]:
        """The matchmaking session of every connected client, by socket ID (both paths)."""
        return {**self.fast.sessions,
                **{sid: client.session for sid, client in self.clients.items()}}

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        hub = self.hub
        if hub.state is not Lifecycle.READY:
            raise socketio.exceptions.ConnectionRefusedError(
                "server is starting or draining", {"code": "capacity"})
        # (the Engine.IO handshake already passed the per-IP limits: engine.handshake_limits)
        self.clients[sid] = _Client(self, sid, self.sio.manager.eio_sid_from_sid(sid, "/"))
        hub.track(Drainable(sid, lambda code, reason: self.close_all()))
        hub.stats.connections_total += 1

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        client = self.clients.pop(sid, None)
        self.hub.courier.unregister(sid)
        if client is None:
            self.hub.untrack(sid)
            return
        client.closed = True
        client.executor.close(lambda: self._release(client))

    async def _release(self, client: _Client) -> None:
        try:
            work = client.session.close()
            if work is not None:
                await work
        finally:
            self.hub.untrack(client.sid)
            self._end_poll(client.eio_sid)

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

    def _dispatch(self, sid: str, event: str, args: list[Any]) -> None:
        """One of seed 001's events from a connected client: counted, rate limited, and
        applied in order by the client's serial executor."""
        client = self.clients.get(sid)
        if client is not None and not client.flooding():
            self.hub.stats.frames_in[event] += 1
            client.executor.submit(client.session.handle, event, args[0] if args else None)

    def _handler(self, event: str) -> Callable[..., Coroutine[Any, Any, None]]:
        """python-socketio's handler for ``event`` (frames the fast dispatch leaves to it,
        such as an event that asks for an ack)."""
        async def handle(sid: str, *args: Any) -> None:
            self._dispatch(sid, event, list(args))
        return handle

    def _refused(self, sid: str, event: str) -> None:
        """An event that is not seed 001's (reserved, unknown): never dispatched, answered
        with unknown_type in order, after everything queued before it."""
        client = self.clients.get(sid)
        if client is not None and not client.flooding():
            self.hub.stats.frames_in["unknown"] += 1
            client.executor.submit(_unknown_event, event, None)

    async def status(self, request: web.Request) -> web.Response:
        """``GET /api/status``: queue and room counts (seed 001)."""
        s = await self.matchmaker.status(STATUS_USERS)
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return json_response({
            "queue": {"size": s.queue_size, "users": list(s.queue_users)},
            "rooms": {"active": s.rooms_active, "total": s.rooms_total},
            "timestamp": now.replace("+00:00", "Z"),
            **self.hub.cluster_status(),
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
        for sid in list(self.clients):
            try:
                await self.sio.disconnect(sid)
            except Exception:
                log.exception("match: disconnecting %s at shutdown failed", sid)
        if self.sio.eio.service_task_handle is not None:
            await self.sio.shutdown()

    async def cleanup(self, app: web.Application) -> None:
        """Cancel the writer tasks still running."""
        await self.tasks.close()


def _unknown_event(event: str, _: object) -> None:
    raise UnknownType(f"unknown event {event[:80]!r}")


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
        conn_id = f"sio-ws-{id(request)}"
        server.hub.track(Drainable(conn_id, lambda code, reason: server.close_all()))
        try:
            return await handler(request)
        finally:
            server.hub.untrack(conn_id)
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


def setup(app: web.Application) -> None:
    """Attach Socket.IO matchmaking, ``/api/status`` and the ``/match`` page to ``app``."""
    server = MatchServer(app[HUB])
    app[MATCH] = server
    server.sio.attach(app, socketio_path="socket.io")
    # WebSocket-only clients on the fast path; python-socketio's route serves the rest
    app[ROUTER].add(Endpoint(EIO_PATH, (server.fast,), codec=EioCodec(), text_ping=b"2",
                             accepts=accepts, mounted=False))
    app.router.add_get("/api/status", server.status)
    app.router.add_get("/match", match_page)
    app.router.add_get("/vendor/{name}", vendor)
    app.middlewares.append(_track_websockets(server))
    app.middlewares.append(handshake_limits(server.hub))
    app.on_shutdown.append(server.shutdown)
    app.on_cleanup.append(server.cleanup)
