"""A WebSocket endpoint that speaks one or more JSON dialects on one connection.

``/ws`` speaks the rooms messages (seed 000) and the voice messages (seed 002),
whose type names do not collide; each frame is parsed once and routed by its
``type`` to the dialect that owns it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rtchub.base.metrics import Stats
from rtchub.errors import ProtocolError, RtcHubError, ServerError, UnknownType
from rtchub.net.connection import Connection
from rtchub.wire.frame import encode_error, parse_frame

__all__ = ["Dialect", "DialectHandler", "ErrorReply", "WsSession"]

log = logging.getLogger("rtchub.ws")

ErrorReply = Callable[[RtcHubError], None]


class DialectHandler(Protocol):
    """One dialect's state on one connection."""

    def handle(self, obj: dict[str, Any], received_ns: int) -> None:
        """Handle a parsed frame whose type this dialect owns; may raise RtcHubError."""
        ...

    def close(self) -> None:
        """The connection is gone."""
        ...


class Dialect(Protocol):
    """A protocol that can be spoken on a WebSocket endpoint."""

    @property
    def types(self) -> frozenset[str]:
        """Message types it owns."""
        ...

    def open(self, conn: Connection, reply_error: ErrorReply) -> DialectHandler:
        """Start this dialect's state for a new connection (may send a greeting)."""
        ...


class WsSession:
    """Parses each text frame once and routes it to the dialect owning its ``type``."""

    __slots__ = ("_conn", "_handlers", "_routes", "_stats")

    def __init__(self, conn: Connection, dialects: Sequence[Dialect], stats: Stats) -> None:
        self._conn = conn
        self._stats = stats
        self._routes: dict[str, DialectHandler] = {}
        self._handlers: list[DialectHandler] = []
        for dialect in dialects:
            handler = dialect.open(conn, self.reply_error)
            self._handlers.append(handler)
            for kind in dialect.types:
                self._routes[kind] = handler

    def on_text(self, data: bytes, received_ns: int) -> None:
        """Parse, route, and turn every failure into an error frame."""
        try:
            obj = parse_frame(data)
            kind = obj["type"]
            handler = self._routes.get(kind)
            if handler is None:
                self._stats.frames_in["unknown"] += 1
                raise UnknownType(f"unknown message type {kind[:40]!r}")
            self._stats.frames_in[kind] += 1
            handler.handle(obj, received_ns)
        except RtcHubError as err:
            self.reply_error(err)
        except Exception as exc:
            log.exception("handler failed on conn=%s", self._conn.id)
            self.reply_error(ServerError(f"Server error: {type(exc).__name__}"))

    def on_binary(self, data: bytes) -> None:
        """Binary frames are not part of any JSON dialect."""
        self._stats.frames_in["binary"] += 1
        self.reply_error(ProtocolError("binary frames are not supported: send JSON text frames"))

    def on_close(self) -> None:
        """Let every dialect release its state."""
        for handler in self._handlers:
            try:
                handler.close()
            except Exception:
                log.exception("dialect close failed on conn=%s", self._conn.id)

    def reply_error(self, err: RtcHubError) -> None:
        """Send ``err`` to this client as an error frame."""
        self._stats.errors[err.code] += 1
        self._stats.frames_out["error"] += 1
        self._conn.send(encode_error(err))
