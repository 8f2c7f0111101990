"""Where every WebSocket connection comes in, on either stack: admit, open, track, end.

The head sniffer hands a socket whose first request is an upgrade to
:meth:`Gateway.fast_protocol` (picows); every other upgrade reaches
:meth:`Gateway.handle` through aiohttp. Both ask the one router, build a
:class:`~rtchub.net.connection.NetConnection` with the same limits, and open a
:class:`~rtchub.net.session.Session` through :meth:`Gateway.open`, which is also the one
place a connection is counted for drains and the heartbeat and forgotten again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import picows
from aiohttp import web

from rtchub.base.faultlog import FaultLog
from rtchub.errors import RtcHubError
from rtchub.hub import Hub
from rtchub.net.batch import TurnBatch
from rtchub.net.connection import ConnLimits, NetConnection
from rtchub.net.fastws import FastListener, QuietLogger, build_protocol, refusal
from rtchub.net.heartbeat import Heartbeat
from rtchub.net.http import error_response
from rtchub.net.httpws import HttpConnection, run_session, websocket_response
from rtchub.net.router import Admission, Endpoint, Router
from rtchub.net.session import Routing, Session

__all__ = ["Gateway"]

log = logging.getLogger("rtchub.ws")


class Gateway:
    """The WebSocket entry of one server: see the module docstring."""

    def __init__(self, hub: Hub, router: Router) -> None:
        self.hub = hub
        self.router = router
        limits = hub.config.limits
        self.limits = ConnLimits(max_message=limits.max_message_bytes,
                                 send_buffer=limits.send_buffer,
                                 send_timeout=limits.send_timeout)
        self.heartbeat = Heartbeat(hub.config.heartbeat, hub.clock, hub.changes.notify)
        self.batch = TurnBatch()    # the fast path's writes, one per connection per turn
        self._ids = itertools.count(1)
        self._sessions: dict[str, NetConnection] = {}
        self._routing: dict[Endpoint, Routing] = {}
        burst, period = hub.config.log_fault_rate
        # bound once, shared by every session (a bound method per connection is 64 B)
        self._spawn = hub.tasks.spawn
        self._end = self._ended
        self._picows_log = QuietLogger(log, FaultLog(log, hub.clock, burst=burst,
                                                     period=period, errors_are_faults=True))

    @property
    def connections(self) -> dict[str, NetConnection]:
        """Open WebSocket connections by ID (both stacks)."""
        return self._sessions

    def next_id(self) -> str:
        """A process-unique connection ID."""
        return f"c{next(self._ids)}"

    def open(self, conn: NetConnection, admission: Admission) -> Session:
        """Start the endpoint's dialects on ``conn``; count it for drains and heartbeats."""
        hub = self.hub
        self._sessions[conn.id] = conn
        hub.connection_opened(conn.remote)
        hub.track(conn)   # a NetConnection is what the drain closes
        endpoint = admission.endpoint
        conn.text_ping = endpoint.text_ping
        self.heartbeat.add(conn)
        routing = self._routing.get(endpoint)
        if routing is None:
            limits = hub.config.limits
            routing = self._routing[endpoint] = Routing(
                endpoint.dialects, hub.clock, limits.ws_msg_rate, limits.ws_error_rate,
                endpoint.codec)
        return Session(conn, routing, admission.params, courier=hub.courier,
                       spawn=self._spawn, stats=hub.stats,
                       pending_max=hub.config.limits.pending_max, on_end=self._end)

    def _ended(self, session: Session) -> None:
        conn = self._sessions.pop(session.conn.id, None)
        if conn is not None:
            self.heartbeat.discard(conn)
            self.hub.connection_closed(conn.remote)
        self.hub.untrack(session.conn.id)

    # -- the picows fast path ------------------------------------------------------------

    def fast_protocol(self, transport: asyncio.Transport) -> asyncio.BaseProtocol:
        """A picows protocol for a socket whose first request is a WebSocket upgrade."""
        hub = self.hub
        peer = transport.get_extra_info("peername")
        peer_ip = peer[0] if isinstance(peer, tuple) else None

        def listener_factory(request: picows.WSUpgradeRequest) -> Any:
            try:
                admission = self.router.admit(request.path.decode("latin-1"),
                                              request.headers, peer_ip)
            except RtcHubError as err:
                return refusal(err)
            return FastListener(lambda conn: self.open(conn, admission), self.next_id(),
                                admission.remote, self.limits, hub.clock, hub.stats,
                                hub.config.limits.write_buffer, self.batch)

        return build_protocol(listener_factory, max_message=self.limits.max_message,
                              read_buffer=hub.config.limits.read_buffer,
                              handshake_timeout=hub.config.head_timeout,
                              logger=self._picows_log)

    # -- the aiohttp path ----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler of every WebSocket path."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        peer_ip = peer[0] if isinstance(peer, tuple) else None
        try:
            admission = self.router.admit(str(request.rel_url), request.headers, peer_ip)
        except RtcHubError as err:
            return error_response(err)
        ws = websocket_response(self.limits)
        await ws.prepare(request)
        if request.transport is not None:
            high = self.hub.config.limits.write_buffer
            request.transport.set_write_buffer_limits(high=high, low=high // 4)
        hub = self.hub
        conn = HttpConnection(self.next_id(), ws, request, admission.remote, self.limits,
                              hub.clock, hub.stats)
        await run_session(ws, conn, self.open(conn, admission))
        return ws

