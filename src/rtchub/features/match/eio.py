"""Seed 001 on the WebSocket fast path: Engine.IO 4 and Socket.IO 5 framing over picows.

A client that opens ``/socket.io/?EIO=4&transport=websocket`` (no ``sid``: it is not
upgrading a long-polling session) as the first request of its socket is served here, by
the same gateway, session and serial executor as ``/ws``, one call per frame and no task;
everything else at ``/socket.io/`` (long-polling, the upgrade of a polling session, a
WebSocket on a kept-alive socket) is python-socketio's (:mod:`.routes`). Both feed the one
:class:`~rtchub.features.match.handler.MatchSession` per user and the one matchmaker, so a
client on either path is matched with, and relays to, a client on the other.

What a Socket.IO 4 client sees is what python-socketio sends: on connect the Engine.IO
open packet ``0{"sid","upgrades":[],"pingInterval","pingTimeout","maxPayload"}``; after its
``40`` the namespace's ``40{"sid"}``; events as ``42["name",data]``; an event that asks for
an ack gets an empty ack (``43<id>[]``); Engine.IO pings (``2``) on every heartbeat sweep,
which the client answers (``3``). Only the default namespace exists (``44/x,{"message"}``
for another), binary events are refused, and an event that is not one of seed 001's
client events is answered with ``error`` (``unknown_type``), as on the other path.

A refused frame is answered with seed 001's ``error`` event, ``event`` naming the event
that failed; a frame that is not Engine.IO at all too (``bad_message``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable
from typing import Any, Final

import orjson

from rtchub.base.connection import Connection, ErrorReply
from rtchub.base.eager import eager
from rtchub.base.metrics import Stats
from rtchub.errors import ProtocolError, RtcHubError, UnknownType
from rtchub.features.match import wire
from rtchub.features.match.events import EVENTS, MatchEvent
from rtchub.features.match.handler import MatchSession
from rtchub.features.match.service import Matchmaker

__all__ = ["EIO_PATH", "EioCodec", "EioDialect", "EioHandler", "accepts"]

EIO_PATH: Final = "/socket.io/"

# operations that are not seed 001's events (a dash-free prefix no event name has)
CONNECT: Final = "sio:connect"
DISCONNECT: Final = "sio:disconnect"
IGNORED: Final = "eio:ignored"          # pong, noop, a client's ack
CLOSE: Final = "eio:close"
UNKNOWN: Final = "unknown"              # an event that is not seed 001's (as counted)

_IGNORED: Final = {"type": IGNORED}
_CLOSE: Final = {"type": CLOSE}
_DISCONNECT: Final = {"type": DISCONNECT}
_CLIENT_EVENTS: Final = frozenset(wire.CLIENT_EVENTS)


def accepts(query: dict[str, str] | Any) -> bool:
    """The upgrades served here: Engine.IO 4 over WebSocket from the start (no ``sid``)."""
    return (query.get("transport") == "websocket" and query.get("EIO") == "4"
            and "sid" not in query)


def _event(body: bytes) -> dict[str, Any]:
    """A Socket.IO EVENT after its type digit: ``[nsp,][ack]["name",args...]``."""
    if body[:1] == b"/":
        comma = body.find(b",")
        nsp = body[:comma if comma >= 0 else len(body)]
        if nsp != b"/":
            raise ProtocolError(f"no namespace {nsp[:40].decode('utf-8', 'replace')!r} here: "
                                "only the default namespace '/'")
        body = body[comma + 1:]
    i = 0
    while i < len(body) and 48 <= body[i] <= 57:
        i += 1
    ack = int(body[:i]) if i else None
    try:
        value = orjson.loads(body[i:])
    except orjson.JSONDecodeError:
        raise ProtocolError("a Socket.IO event is a JSON array: [\"name\", data]") from None
    if type(value) is not list or not value:
        raise ProtocolError("a Socket.IO event is a JSON array: [\"name\", data]")
    name = value[0]
    if type(name) is not str or name not in _CLIENT_EVENTS:
        return {"type": UNKNOWN, "name": name if type(name) is str else repr(name)[:40],
                "ack": ack}
    data = value[1] if len(value) > 1 else None
    return {"type": name, "data": data, "ack": ack}


class EioCodec:
    """Engine.IO text frames in, seed 001's ``error`` event out (the session's codec)."""

    def parse(self, data: bytes) -> dict[str, Any]:
        """The operation a frame asks for; raises ProtocolError for one that is not an
        Engine.IO packet rtchub serves."""
        kind = data[:1]
        if kind == b"4":
            sio = data[1:2]
            if sio == b"2":
                return _event(data[2:])
            if sio == b"0":
                return {"type": CONNECT, "nsp": _namespace(data[2:])}
            if sio == b"1":
                return _DISCONNECT
            if sio == b"3":
                return _IGNORED
            if sio in (b"5", b"6"):
                raise ProtocolError("binary Socket.IO packets are not supported: seed 001 "
                                    "sends JSON")
            raise ProtocolError("not a Socket.IO packet a client sends")
        if kind in (b"3", b"6", b"2"):   # pong, noop, a v3 client's ping
            return _IGNORED
        if kind == b"1":
            return _CLOSE
        raise ProtocolError("not an Engine.IO 4 packet (open the socket with ?EIO=4)")

    def error(self, err: RtcHubError, frame: object) -> bytes:
        """``42["error",{code, error, message, event?}]``."""
        event = None
        if isinstance(frame, dict):
            kind = frame.get("type")
            event = frame.get("name") if kind == UNKNOWN else kind
            if kind not in _CLIENT_EVENTS and kind != UNKNOWN:
                event = None
        payload = wire.error_payload(err, event if isinstance(event, str) else None)
        return b"42" + orjson.dumps([wire.ERROR, payload])


def _namespace(body: bytes) -> str:
    if body[:1] != b"/":
        return "/"
    comma = body.find(b",")
    return body[:comma if comma >= 0 else len(body)].decode("utf-8", "replace")[:80]


class EioDialect:
    """Seed 001's events over Engine.IO on the fast path (the session's dialect)."""

    types: frozenset[str] = frozenset({*wire.CLIENT_EVENTS, CONNECT, DISCONNECT, IGNORED,
                                       CLOSE, UNKNOWN})
    events: tuple[type, ...] = EVENTS

    def __init__(self, matchmaker: Matchmaker, stats: Stats, *, ping_interval: float,
                 max_payload: int) -> None:
        self.matchmaker = matchmaker
        self.stats = stats
        millis = round(ping_interval * 1000)
        self._open_tail = orjson.dumps({"upgrades": [], "pingInterval": millis,
                                        "pingTimeout": millis, "maxPayload": max_payload})
        self.sessions: dict[str, MatchSession] = {}   # connected users by socket ID

    def open_packet(self, eio_sid: str) -> bytes:
        """Engine.IO's handshake: ``0{"sid": ..., "upgrades": [], ...}``."""
        return b'0{"sid":' + orjson.dumps(eio_sid) + b"," + self._open_tail[1:]

    def open(self, conn: Connection, params: object, reply_error: ErrorReply) -> EioHandler:
        """State for one connection."""
        return EioHandler(self, conn)


class EioHandler:
    """One Engine.IO connection: its Socket.IO connection to ``/`` and its user."""

    __slots__ = ("_conn", "_dialect", "session")

    def __init__(self, dialect: EioDialect, conn: Connection) -> None:
        self._dialect = dialect
        self._conn = conn
        self.session: MatchSession | None = None

    def start(self) -> None:
        """Send the Engine.IO open packet."""
        self._conn.send(self._dialect.open_packet(secrets.token_urlsafe(15)))

    def handle(self, obj: dict[str, Any], received_ns: int) -> Awaitable[None] | None:
        """Apply one operation (see :meth:`EioCodec.parse`)."""
        kind = obj["type"]
        session = self.session
        if kind in _CLIENT_EVENTS:
            if session is None:
                raise ProtocolError("connect to the namespace first (send 40)")
            work = session.handle(kind, obj["data"])
            ack = obj["ack"]
            if ack is not None:
                self._conn.send(b"43" + str(ack).encode() + b"[]")
            # a request over the in-memory store finishes here, with no task (it is
            # started after the ack, which the client gets first as on the other path)
            if work is not None and self._dialect.matchmaker.immediate:
                return eager(work)
            return work
        if kind == IGNORED:
            return None
        if kind == CONNECT:
            self._connect(obj["nsp"])
            return None
        if kind == UNKNOWN:
            raise UnknownType(f"unknown event {str(obj['name'])[:80]!r}")
        if kind == DISCONNECT:
            return self._leave()
        # CLOSE: the client ends the Engine.IO session
        self._conn.close()
        return self._leave()

    def _connect(self, nsp: str) -> None:
        if nsp != "/":
            self._conn.send(b"44" + nsp.encode() + b","
                            + orjson.dumps({"message": "Invalid namespace"}))
            return
        session = self.session
        if session is None:
            d = self._dialect
            sid = secrets.token_urlsafe(15)
            session = self.session = MatchSession(sid, self._conn.address, d.matchmaker,
                                                  self._emit, d.stats)
            d.sessions[sid] = session
        self._conn.send(b'40{"sid":' + orjson.dumps(session.user) + b"}")

    def _emit(self, event: str, data: Any) -> None:
        self._conn.send(b"42" + orjson.dumps([event] if data is None else [event, data]))

    def _leave(self) -> Awaitable[None] | None:
        session, self.session = self.session, None
        if session is None:
            return None
        self._dialect.sessions.pop(session.user, None)
        return session.close()

    def deliver(self, event: MatchEvent) -> None:
        """A matchmaking event for this user."""
        session = self.session
        if session is not None:
            session.deliver(event)

    def close(self) -> Awaitable[None] | None:
        """The socket is gone: leave the queue and end the pairing (partner told)."""
        return self._leave()
