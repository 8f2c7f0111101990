"""A WebSocket connection speaking one or more JSON dialects, whatever stack carries it.

``/ws`` speaks the rooms messages (seed 000) and the voice messages (seed 002), whose type
names do not collide: each text frame is parsed once and routed by its ``type`` to the
dialect that owns it, through the connection's one :class:`SerialExecutor`. Events the
courier delivers to the connection are routed by their class to the dialect that renders
them (the session registers that table with the courier). Opening registers the
connection; closing unregisters it and releases every dialect, once, after the operation
in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from rtchub.base.clock import Clock
from rtchub.base.connection import CloseCode, Connection, ErrorReply
from rtchub.base.metrics import Stats
from rtchub.base.ratelimit import Window
from rtchub.cluster.courier import Courier
from rtchub.errors import ProtocolError, RtcHubError, UnknownType
from rtchub.net.connection import NetConnection
from rtchub.net.executor import SerialExecutor, Spawn
from rtchub.wire.frame import encode_error, parse_frame

__all__ = ["Dialect", "DialectHandler", "ErrorReply", "FrameCodec", "Routing", "Session"]

log = logging.getLogger("rtchub.ws")


class DialectHandler(Protocol):
    """One dialect's state on one connection (a feature's ``handler`` module)."""

    def start(self) -> Awaitable[None] | None:
        """First operation once the connection is open (None: nothing to do)."""
        ...

    def handle(self, obj: dict[str, Any], received_ns: int) -> Awaitable[None] | None:
        """Apply one parsed frame of a type this dialect owns; may raise RtcHubError."""
        ...

    def deliver(self, event: Any) -> None:
        """Render an event of a class this dialect declared; never raises."""
        ...

    def close(self) -> Awaitable[None] | None:
        """The connection is gone: release what this dialect holds."""
        ...


class Dialect(Protocol):
    """A wire protocol that can be spoken on a WebSocket endpoint."""

    @property
    def types(self) -> frozenset[str]:
        """Frame types it owns."""
        ...

    @property
    def events(self) -> tuple[type, ...]:
        """Event classes it renders."""
        ...

    def open(self, conn: Connection, params: Any, reply_error: ErrorReply) -> DialectHandler:
        """This dialect's state for a new connection (``params``: the endpoint's parsed
        query, if any)."""
        ...


class FrameCodec(Protocol):
    """How an endpoint whose frames are not rtchub's JSON envelope (Engine.IO's, on
    ``/socket.io/``) reads them and writes its errors. Without one, a frame is a JSON
    object routed by its ``type`` and an error is ``{"type": "error", ...}``."""

    def parse(self, data: bytes) -> dict[str, Any]:
        """The frame as an object whose ``type`` names its dialect's operation; raises
        RtcHubError for a frame the client must be told is wrong."""
        ...

    def error(self, err: RtcHubError, frame: object) -> bytes:
        """The frame that tells the client of ``err`` (``frame``: what failed, or None)."""
        ...


class Routing:
    """Which dialect of an endpoint owns each frame type and renders each event class:
    built once per endpoint and shared by all its connections (a connection holds only
    its handlers, in the same order)."""

    __slots__ = ("clock", "codec", "dialects", "error_rate", "events", "msg_rate", "types")

    def __init__(self, dialects: Sequence[Dialect], clock: Clock | None = None,
                 msg_rate: tuple[int, float] = (0, 1.0),
                 error_rate: tuple[int, float] = (0, 1.0),
                 codec: FrameCodec | None = None) -> None:
        self.dialects = tuple(dialects)
        self.codec = codec
        # WS_MSG_RATE, WS_ERROR_RATE: a client past either is closed (each frame costs the
        # server a parse, each refusal an error frame too); no clock: not enforced
        self.clock = clock
        self.msg_rate = msg_rate if clock is not None and msg_rate[0] > 0 else None
        self.error_rate = error_rate if clock is not None and error_rate[0] > 0 else None
        self.types: dict[str, int] = {}
        self.events: dict[type, int] = {}
        for i, dialect in enumerate(self.dialects):
            for kind in dialect.types:
                self.types[kind] = i
            for event_type in dialect.events:
                self.events[event_type] = i


class Session(SerialExecutor):
    """Routes frames in and events out of one connection, and applies its frames in order
    (it is the connection's serial executor); see the module docstring."""

    __slots__ = ("_conn", "_courier", "_ended", "_errors", "_handlers", "_on_end", "_rate",
                 "_routing", "_stats")

    def __init__(self, conn: NetConnection, routing: Routing, params: Any, *,
                 courier: Courier, spawn: Spawn, stats: Stats, pending_max: int,
                 on_end: Callable[[Session], None]) -> None:
        super().__init__(spawn, self._op_failed, pending_max, conn.id)
        self._conn = conn
        # the rate windows are made on a connection's first message / first refusal, so an
        # idle connection holds none
        self._rate: Window | None = None
        self._errors: Window | None = None
        self._courier = courier
        self._stats = stats
        self._on_end = on_end
        self._ended = False
        self._routing = routing
        self._handlers: tuple[DialectHandler, ...] = tuple(
            dialect.open(conn, params, self.reply_error) for dialect in routing.dialects)
        # the courier delivers each event class straight to the dialect that renders it
        conn.address = courier.register(conn.id, self._handlers, routing.events)
        stats.connections_total += 1
        stats.connections_open += 1
        for handler in self._handlers:
            self.submit(_start, handler, None)

    @property
    def conn(self) -> Connection:
        """The connection this session serves."""
        return self._conn

    def _flooding(self) -> bool:
        """Count one message against WS_MSG_RATE; past it, close (True)."""
        routing = self._routing
        if routing.msg_rate is None or routing.clock is None:
            return False
        rate = self._rate
        if rate is None:
            rate = self._rate = Window(*routing.msg_rate)
        if rate.hit(routing.clock()) is None:
            return False
        if not self._conn.closed:
            self._stats.closes["msg_rate"] += 1
            self._conn.close(CloseCode.POLICY, f"more than {rate.limit} messages in "
                                               f"{rate.window:g}s (WS_MSG_RATE)")
        return True

    def on_text(self, data: bytes, received_ns: int) -> None:
        """Parse, route, and apply in order; every failure becomes an error frame."""
        if self._routing.msg_rate is not None and self._flooding():
            return
        codec = self._routing.codec
        try:
            obj = parse_frame(data) if codec is None else codec.parse(data)
            kind = obj["type"]
            index = self._routing.types.get(kind)
            if index is None:
                self._stats.frames_in["unknown"] += 1
                raise UnknownType(f"unknown message type {kind[:40]!r}")
        except RtcHubError as err:
            self.reply_error(err)
            return
        self._stats.frames_in[kind] += 1
        self.submit(self._handlers[index].handle, obj, received_ns)

    def on_binary(self, data: bytes) -> None:
        """Binary frames are not part of any JSON dialect."""
        if self._flooding():
            return
        self._stats.frames_in["binary"] += 1
        self.reply_error(ProtocolError("binary frames are not supported here: send text "
                                       "frames"))

    def on_close(self) -> None:
        """The socket is gone: unregister, then release every dialect after what was sent
        before the close is applied. Runs once."""
        if self._ended:
            return
        self._ended = True
        self._courier.unregister(self._conn.id)
        self._stats.connections_open -= 1
        self.close(self._release)

    def reply_error(self, err: RtcHubError, frame: object = None) -> None:
        """Send ``err`` to this client as an error frame; past WS_ERROR_RATE, close."""
        self._stats.errors[err.code] += 1
        self._stats.frames_out["error"] += 1
        codec = self._routing.codec
        self._conn.send(encode_error(err) if codec is None else codec.error(err, frame))
        routing = self._routing
        if routing.error_rate is None or routing.clock is None:
            return
        errors = self._errors
        if errors is None:
            errors = self._errors = Window(*routing.error_rate)
        if errors.hit(routing.clock()) is not None and not self._conn.closed:
            self._stats.closes["error_rate"] += 1
            self._conn.close(CloseCode.POLICY, f"more than {errors.limit} refused messages in "
                                               f"{errors.window:g}s (WS_ERROR_RATE)")

    def _op_failed(self, err: RtcHubError, frame: object) -> None:
        self.reply_error(err, frame)

    def _release(self) -> Awaitable[None] | None:
        pending = []
        for handler in self._handlers:
            try:
                work = handler.close()
            except Exception:
                log.exception("releasing a dialect failed on conn=%s", self._conn.id)
                continue
            if work is not None:
                pending.append(work)
        self._on_end(self)
        # the handlers and the executor's error callback refer back to this session:
        # letting go of them frees a closed connection without the cyclic collector
        self._handlers = ()
        self._on_error = _dropped
        if not pending:
            return None
        return _all(pending)


def _dropped(err: RtcHubError, frame: object) -> None:
    """A released session's error callback: the connection is gone, nobody to tell."""


def _start(handler: DialectHandler, _: object) -> Awaitable[None] | None:
    return handler.start()


async def _all(works: list[Awaitable[None]]) -> None:
    for work in works:
        try:
            await work
        except Exception:
            log.exception("releasing a dialect failed")
