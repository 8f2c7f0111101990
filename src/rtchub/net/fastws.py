"""The /ws fast path: picows (Cython WebSocket framing) driving rtchub sessions.

picows parses frames in C and calls :class:`FastListener` once per frame with
no task and no future per message; that is what lets one Python process relay
as many signaling messages as a Node server at 10,000 connections. The
:mod:`rtchub.net.sniffer` protocol hands it sockets whose first request is
a WebSocket upgrade of a fast path.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import picows
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # not re-exported

from rtchub.base.metrics import Stats
from rtchub.net.connection import (
    CLOSE_TOO_BIG,
    SendBuffer,
    Session,
    SessionFactory,
    next_conn_id,
)

__all__ = ["FastConnection", "FastListener", "Heartbeat", "Upgrade", "build_protocol"]

log = logging.getLogger("rtchub.ws")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE


class FastConnection:
    """A picows connection seen through the :class:`Connection` protocol."""

    __slots__ = ("_buffer", "_closed", "_stats", "_transport", "id", "remote")

    def __init__(self, transport: WSTransport, remote: str, send_buffer: int,
                 send_timeout: float, stats: Stats) -> None:
        self.id = next_conn_id()
        self.remote = remote
        self._transport = transport
        self._closed = False
        self._stats = stats
        # a C-level partial, not a closure: one Python frame less on every send
        self._buffer = SendBuffer(functools.partial(transport.send, _TEXT), self._kill, send_buffer,
                                  send_timeout)

    @property
    def closed(self) -> bool:
        """True once close was requested or the socket is gone."""
        return self._closed

    def send(self, data: bytes) -> None:
        """Send a text frame now, or queue it while the socket is paused."""
        if not self._closed:
            self._buffer.send(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and disconnect once it is written."""
        if self._closed:
            return
        self._closed = True
        self._stats.closes[_reason_label(code)] += 1
        self._buffer.resume()
        self._buffer.clear()
        self._transport.send_close(WSCloseCode(code), reason.encode()[:120])
        self._transport.disconnect(graceful=True)

    def drop(self, reason: str) -> None:
        """Cut a connection whose client went silent (1001 with ``reason``)."""
        self._kill(1001, reason, "heartbeat")

    def _kill(self, code: int, reason: str, label: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._stats.closes[label or _reason_label(code)] += 1
        log.info("disconnecting client conn=%s remote=%s: %s", self.id, self.remote, reason)
        self._transport.send_close(WSCloseCode(code), reason.encode()[:120])
        self._transport.disconnect(graceful=False)

    def pause(self) -> None:
        """The socket's write buffer is over its high-water mark."""
        self._buffer.pause()

    def resume(self) -> None:
        """The socket drained."""
        self._buffer.resume()

    def gone(self) -> None:
        """The socket is closed."""
        self._closed = True
        self._buffer.clear()


def _reason_label(code: int) -> str:
    return {1000: "normal", 1001: "going_away", 1008: "policy", 1009: "too_big",
            4001: "replaced"}.get(code, str(code))


class Upgrade:
    """What the router decided for one upgrade request: the session factory and limits."""

    __slots__ = ("factory", "max_message", "remote", "send_buffer", "send_timeout", "stats",
                 "write_buffer")

    def __init__(self, factory: SessionFactory, remote: str, stats: Stats, *,
                 max_message: int, send_buffer: int, send_timeout: float,
                 write_buffer: int) -> None:
        self.factory = factory
        self.remote = remote
        self.stats = stats
        self.max_message = max_message
        self.send_buffer = send_buffer
        self.send_timeout = send_timeout
        self.write_buffer = write_buffer


class FastListener(WSListener):
    """One connection's frame handler: reassembles fragments, hands messages to the session."""

    def __init__(self, upgrade: Upgrade, on_open: Callable[[FastListener], None],
                 on_gone: Callable[[FastListener], None]) -> None:
        super().__init__()
        self._upgrade = upgrade
        self._on_open = on_open
        self._on_gone = on_gone
        self.conn: FastConnection | None = None
        self.session: Session | None = None
        self._parts: list[bytes] | None = None
        self._parts_size = 0
        self._parts_binary = False
        self._transport: WSTransport | None = None
        self.seen = True       # a frame arrived since the last heartbeat sweep
        self.pinged = False    # the last sweep pinged this connection

    def beat(self) -> None:
        """One heartbeat sweep: ping a connection that was silent for a whole period, drop
        one that stayed silent for a period after its ping."""
        if self.seen:
            self.seen = False
            self.pinged = False
            return
        conn, transport = self.conn, self._transport
        if conn is None or transport is None or conn.closed:
            return
        if not self.pinged:
            self.pinged = True
            transport.send_ping()
            return
        conn.drop("heartbeat timeout: no answer to ping")

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._transport = transport
        up = self._upgrade
        high = up.write_buffer
        transport.underlying_transport.set_write_buffer_limits(high=high, low=high // 4)
        conn = FastConnection(transport, up.remote, up.send_buffer, up.send_timeout, up.stats)
        self.conn = conn
        self._on_open(self)
        self.session = up.factory(conn)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.seen = True
        kind = frame.msg_type
        session = self.session
        if session is None:
            return
        if kind is _TEXT and frame.fin:
            session.on_text(frame.get_payload_as_bytes(), time.perf_counter_ns())
        elif kind is _TEXT or kind is _BINARY:
            if self._parts is not None:
                self._protocol_error("new message before the previous fragmented one ended")
                return
            if frame.fin:
                session.on_binary(frame.get_payload_as_bytes())
                return
            self._parts = [frame.get_payload_as_bytes()]
            self._parts_size = len(self._parts[0])
            self._parts_binary = kind is _BINARY
        elif kind is _CONT:
            self._continuation(session, frame)
        elif kind is _CLOSE:
            conn = self.conn
            if conn is not None and not conn.closed:
                conn.gone()
                transport.send_close(frame.get_close_code(), b"")
            transport.disconnect()

    def _continuation(self, session: Session, frame: WSFrame) -> None:
        parts = self._parts
        if parts is None:
            self._protocol_error("continuation frame without a message to continue")
            return
        chunk = frame.get_payload_as_bytes()
        self._parts_size += len(chunk)
        if self._parts_size > self._upgrade.max_message:
            self._parts = None
            if self.conn is not None:
                self.conn.close(CLOSE_TOO_BIG, f"message exceeds {self._upgrade.max_message} "
                                "bytes")
            return
        parts.append(chunk)
        if frame.fin:
            self._parts = None
            data = b"".join(parts)
            if self._parts_binary:
                session.on_binary(data)
            else:
                session.on_text(data, time.perf_counter_ns())

    def _protocol_error(self, reason: str) -> None:
        self._parts = None
        if self.conn is not None:
            self.conn.close(1002, reason)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        conn, session = self.conn, self.session
        self.session = None
        if conn is not None:
            conn.gone()
            self._on_gone(self)
        if session is not None:
            session.on_close()

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.pause()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.resume()


class Heartbeat:
    """One periodic sweep over every fast-path connection.

    picows can ping per connection, but it runs an asyncio task for each (about 2-3 KB and
    15 GC-tracked objects per idle connection at 10,000 connections); one sweep every
    ``period`` costs a few milliseconds and nothing per connection. A connection silent
    for one period is pinged; silent for another after the ping, it is dropped.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self._listeners: set[FastListener] = set()

    def add(self, listener: FastListener) -> None:
        """Watch a connection."""
        self._listeners.add(listener)

    def discard(self, listener: FastListener) -> None:
        """Stop watching a connection."""
        self._listeners.discard(listener)

    def sweep(self) -> None:
        """Run one heartbeat round over a snapshot of the connections."""
        for listener in list(self._listeners):
            listener.beat()

    async def run(self) -> None:
        """Sweep every ``period`` until cancelled."""
        while True:
            await asyncio.sleep(self.period)
            self.sweep()

    def __len__(self) -> int:
        return len(self._listeners)


class _QuietLogger:
    """picows logs every accept at INFO and makes a Logger object per connection.

    Handing it a logger-like object that is not a :class:`logging.Logger` skips
    both (about 1 KB and a formatted line per connection).
    """

    def __init__(self, target: logging.Logger) -> None:
        self._target = target

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING and self._target.isEnabledFor(level)

    def log(self, level: int, msg: str, *args: Any, **kw: Any) -> None:
        if level >= logging.WARNING:
            self._target.log(level, msg, *args, **kw)

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        pass

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        pass

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        self._target.warning(msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        # picows reports protocol violations by clients at ERROR; they are the client's fault
        self._target.info(msg, *args, **kw)

    def exception(self, msg: str, *args: Any, **kw: Any) -> None:
        self._target.exception(msg, *args, **kw)


_QUIET = _QuietLogger(log)


def build_protocol(listener_factory: Callable[[picows.WSUpgradeRequest], Any], *,
                   max_message: int, read_buffer: int) -> asyncio.BaseProtocol:
    """A server-side picows protocol for one socket (what ``ws_create_server`` would build).

    picows' own auto-ping is off: :class:`Heartbeat` sweeps all connections at once."""
    proto: asyncio.BaseProtocol = WSProtocol(
        None, None, False, listener_factory, _QUIET,
        True,                       # disconnect_on_exception
        10.0,                       # handshake timeout
        False, 20.0, 20.0,          # auto ping off (see Heartbeat)
        picows.WSAutoPingStrategy.PING_WHEN_IDLE,
        True,                       # auto pong
        max_message,
        None,                       # extra headers
        read_buffer,
    )
    return proto

