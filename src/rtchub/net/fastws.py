"""The /ws fast path: picows (Cython WebSocket framing) driving rtchub sessions.

picows parses frames in C and calls :class:`FastListener` once per frame with no task
and no future per message; that is what lets one Python process relay as many signaling
messages as a Node server at 10,000 connections. The head sniffer
(:mod:`rtchub.net.sniffer`) hands it sockets whose first request is a WebSocket upgrade;
the upgrade itself is decided by the one router (:mod:`rtchub.net.router`).

picows answers nothing on its own here: pings are answered through the connection's
bounded send path (auto-pong off), its ping task is off (one heartbeat sweep serves every
connection), and fragments are joined into one buffer counted against ``WS_MAX_MSG``.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import gc
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import orjson
import picows
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport
from picows import api as picows_api
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # not re-exported
from picows.version import __version__ as PICOWS_VERSION

from rtchub.base.clock import Clock
from rtchub.base.connection import CloseCode
from rtchub.base.faultlog import FaultLog
from rtchub.base.metrics import Stats
from rtchub.errors import RtcHubError
from rtchub.net.batch import MAX_STAGED, TurnBatch, text_frame
from rtchub.net.connection import ConnLimits, NetConnection
from rtchub.net.session import Session

__all__ = ["FastConnection", "FastListener", "PicowsChanged", "QuietLogger", "build_protocol",
           "check_picows", "refusal"]

log = logging.getLogger("rtchub.ws")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE
_PING = WSMsgType.PING
_PONG = WSMsgType.PONG

# The arguments picows' own server factory passes to WSProtocol, in order (picows 2.3,
# api.ws_create_server). build_protocol passes the same; check_picows compares them.
_PROTOCOL_ARGS: Final = (
    "None", "None", "False", "ws_listener_factory", "_resolve_logger", "disconnect_on_exception",
    "websocket_handshake_timeout", "enable_auto_ping", "auto_ping_idle_timeout",
    "auto_ping_reply_timeout", "auto_ping_strategy", "enable_auto_pong", "max_frame_size",
    "None", "read_buffer_init_size")


class PicowsChanged(RuntimeError):
    """The installed picows builds its protocol differently from what rtchub mirrors."""


@functools.cache
def check_picows() -> None:
    """Raise :class:`PicowsChanged` unless picows' server factory builds ``WSProtocol``
    with the arguments :func:`build_protocol` passes (read from picows' own source).
    Checked once per process (a failed check is checked again)."""
    # With the collector off: CPython 3.11's AST constructor raises SystemError
    # ("recursion depth mismatch", gh-106905) when a collection during the parse runs a
    # finalizer (an aiortc task's "exception was never retrieved" log, in the suite)
    collecting = gc.isenabled()
    gc.disable()
    try:
        tree = ast.parse(inspect.getsource(picows_api.ws_create_server))
    except (OSError, TypeError, SyntaxError) as exc:
        raise PicowsChanged(f"cannot read picows.api.ws_create_server: {exc}") from None
    finally:
        if collecting:
            gc.enable()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "WSProtocol"):
            found = tuple(_arg_name(a) for a in node.args)
            if found != _PROTOCOL_ARGS or node.keywords:
                raise PicowsChanged(f"picows {PICOWS_VERSION} builds WSProtocol with "
                                    f"{found}; rtchub passes {_PROTOCOL_ARGS}")
            return
    raise PicowsChanged(f"picows {PICOWS_VERSION}: no WSProtocol(...) call in "
                        "ws_create_server")


def _arg_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return ast.unparse(node)


class FastConnection(NetConnection):
    """A picows connection. Its text frames wait for the end of the event loop's turn
    and leave together (:mod:`rtchub.net.batch`)."""

    __slots__ = ("_batch", "_staged", "_transport")

    def __init__(self, conn_id: str, transport: WSTransport, remote: str, limits: ConnLimits,
                 clock: Clock, stats: Stats, batch: TurnBatch) -> None:
        super().__init__(conn_id, remote, self._stage, limits, clock, stats)
        self._transport = transport
        self._batch = batch
        self._staged: list[bytes] | None = None

    def _stage(self, data: bytes) -> None:
        staged = self._staged
        if staged is None:
            self._staged = [data]
            self._batch.add(self.flush)
        else:
            staged.append(data)
            if len(staged) >= MAX_STAGED:
                self.flush()

    def flush(self) -> None:
        """Write the frames staged in this turn: one through picows, several at once."""
        staged, self._staged = self._staged, None
        if not staged:
            return
        transport = self._transport
        if len(staged) == 1:
            transport.send(_TEXT, staged[0])
        elif not (transport.is_close_frame_sent or transport.is_disconnected):
            transport.underlying_transport.write(b"".join([text_frame(d) for d in staged]))

    def _control(self, opcode: int, payload: bytes) -> None:
        self.flush()
        self._transport.send(WSMsgType(opcode), payload)

    def _finish(self, code: int, reason: bytes) -> None:
        self.flush()
        self._transport.send_close(WSCloseCode(code), reason)
        self._transport.disconnect(graceful=True)

    def _abort(self) -> None:
        self._abort_timer = None
        self._staged = None
        self._transport.underlying_transport.abort()

    def gone(self) -> None:
        """The socket is closed: what was staged for it goes too."""
        self._staged = None
        super().gone()


class FastListener(WSListener):
    """One connection's frame handler: joins fragments, answers pings, feeds the session."""

    __slots__ = ("_batch", "_clock", "_conn_id", "_limits", "_max_frame", "_open", "_parts",
                 "_parts_binary", "_remote", "_stats", "_write_buffer", "conn", "session")

    def __init__(self, open_session: Callable[[FastConnection], Session] | None, conn_id: str,
                 remote: str, limits: ConnLimits, clock: Clock, stats: Stats,
                 write_buffer: int, batch: TurnBatch) -> None:
        super().__init__()
        self._batch = batch
        self._open = open_session
        self._conn_id = conn_id
        self._remote = remote
        self._limits = limits
        self._clock = clock
        self._stats = stats
        self._write_buffer = write_buffer
        self.conn: FastConnection | None = None
        self.session: Session | None = None
        self._parts: bytearray | None = None
        self._parts_binary = False
        self._max_frame = limits.max_message

    def on_ws_connected(self, transport: WSTransport) -> None:
        # picows keeps the upgrade request and response on the transport for the
        # connection's life; rtchub read them in the listener factory and never again:
        # their emptied header maps leave about 1 KB less per idle connection
        for message in (transport.request, transport.response):
            headers = getattr(message, "headers", None)
            if headers is not None:
                headers.clear()
        high = self._write_buffer
        transport.underlying_transport.set_write_buffer_limits(high=high, low=high // 4)
        conn = FastConnection(self._conn_id, transport, self._remote, self._limits,
                              self._clock, self._stats, self._batch)
        self.conn = conn
        open_session, self._open = self._open, None  # the closure is not kept per connection
        assert open_session is not None
        self.session = open_session(conn)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        conn, session = self.conn, self.session
        if conn is None or session is None:
            return
        conn.seen = True
        if conn.probes is not None:
            conn.heard()
        if frame.payload_size > self._max_frame:
            # picows 2.3 refuses such a frame with 1009 but, having already entered its
            # payload state, still delivers it on the next read: drop it here
            return
        kind = frame.msg_type
        if kind is _TEXT and frame.fin and self._parts is None:
            session.on_text(frame.get_payload_as_bytes(), time.perf_counter_ns())
        elif kind is _TEXT or kind is _BINARY:
            if self._parts is not None:
                self._protocol_error("new message before the previous fragmented one ended")
            elif frame.fin:
                session.on_binary(frame.get_payload_as_bytes())
            else:
                self._parts = bytearray(frame.get_payload_as_bytes())
                self._parts_binary = kind is _BINARY
        elif kind is _CONT:
            self._continuation(session, frame)
        elif kind is _PING:
            conn.pong(frame.get_payload_as_bytes())
        elif kind is _CLOSE:
            if not conn.closed:
                conn.gone()
                transport.send_close(frame.get_close_code(), b"")
            transport.disconnect()

    def _continuation(self, session: Session, frame: WSFrame) -> None:
        parts = self._parts
        if parts is None:
            self._protocol_error("continuation frame without a message to continue")
            return
        parts += frame.get_payload_as_bytes()
        limit = self._limits.max_message
        if len(parts) > limit:
            self._parts = None
            if self.conn is not None:
                self.conn.close(CloseCode.TOO_BIG, f"message exceeds {limit} bytes")
            return
        if frame.fin:
            self._parts = None
            if self._parts_binary:
                session.on_binary(bytes(parts))
            else:
                session.on_text(bytes(parts), time.perf_counter_ns())

    def _protocol_error(self, reason: str) -> None:
        self._parts = None
        if self.conn is not None:
            self.conn.close(CloseCode.PROTOCOL_ERROR, reason)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        conn, session = self.conn, self.session
        self.session = None
        self._parts = None
        if conn is not None:
            conn.gone()
        if session is not None:
            session.on_close()

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.pause()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.resume()


def refusal(err: RtcHubError) -> picows.WSUpgradeResponseWithListener:
    """An HTTP error answer to an upgrade, in the one vocabulary (JSON ``{code, error}``)."""
    headers = {"Content-Type": "application/json", **getattr(err, "headers", {})}
    retry = getattr(err, "retry_after", None)
    if retry is not None:
        headers["Retry-After"] = str(max(1, round(retry + 0.5)))
    body = orjson.dumps({"code": err.code, "error": err.message})
    response = picows.WSUpgradeResponse.create_error_response(err.http_status, body, headers)
    return picows.WSUpgradeResponseWithListener(response, None)


class QuietLogger:
    """What picows logs through: nothing per connection, client faults rate limited.

    picows logs every accept at INFO and makes a Logger object per connection; handing it
    a logger-like object that is not a :class:`logging.Logger` skips both (about 1 KB and
    a formatted line per connection). It reports protocol violations by clients at ERROR:
    those go to ``faults`` (one line at INFO, rate limited: :mod:`rtchub.base.faultlog`).
    """

    def __init__(self, target: logging.Logger, faults: FaultLog) -> None:
        self._target = target
        self._faults = faults

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING and self._target.isEnabledFor(level)

    def log(self, level: int, msg: str, *args: Any, **kw: Any) -> None:
        if level >= logging.WARNING:
            self._faults.log(level, msg, *args, **kw)

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        pass

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        pass

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        self._faults.warning(msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        self._faults.error(msg, *args, **kw)

    def exception(self, msg: str, *args: Any, **kw: Any) -> None:
        self._faults.exception(msg, *args, **kw)


def build_protocol(listener_factory: Callable[[picows.WSUpgradeRequest], Any], *,
                   max_message: int, read_buffer: int, handshake_timeout: float,
                   logger: QuietLogger) -> asyncio.BaseProtocol:
    """A server-side picows protocol for one socket: what ``ws_create_server`` builds,
    with the same arguments in the same order (:func:`check_picows` verifies them).

    Auto-ping and auto-pong are off: the heartbeat sweep pings, and pongs go through
    the connection's bounded send path."""
    proto: asyncio.BaseProtocol = WSProtocol(
        None, None, False, listener_factory, logger,
        True,                       # disconnect_on_exception
        handshake_timeout,
        False, 20.0, 20.0,          # auto ping off (see Heartbeat)
        picows.WSAutoPingStrategy.PING_WHEN_IDLE,
        False,                      # auto pong off (pongs are bounded like any frame)
        max_message,
        None,                       # extra headers
        read_buffer,
    )
    return proto
