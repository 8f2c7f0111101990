"""Seed 000's room signaling protocol: typed messages, decoding and encoding.

Wire format (docs/protocol.md has an example of every message)::

    client -> server   join {room, from?, token?, topology?, <call-room fields>?} | leave | ping
                       offer {to, sdp} | answer {to, sdp} | candidate {to, candidate}
                       hangup {to}
    server -> client   joined {room, from, members, token, topology, <call-room fields>?}
                       room_members {room, members}
                       pong | offer/answer/candidate/hangup {room, from, to, ...}
                       error {code, error, message}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from rtchub.errors import InvalidField, MissingField, UnknownType
from rtchub.features.rooms.events import Joined, Relayed, Replaced, RoomEvent, RoomMembers
from rtchub.wire.frame import dumps, require_str
from rtchub.wire.webrtc import SdpLimits, check_candidate, check_description

__all__ = [
    "CALL_FIELDS",
    "CLOSE_REPLACED",
    "PONG",
    "SIGNAL_TYPES",
    "TYPES",
    "Join",
    "Leave",
    "Ping",
    "RoomsMessage",
    "Signal",
    "decode",
    "decode_signal",
    "encode_event",
    "encode_relayed",
]

SIGNAL_TYPES: Final = frozenset({"offer", "answer", "candidate", "hangup"})
TYPES: Final = frozenset({"join", "leave", "ping"}) | SIGNAL_TYPES
PONG: Final = b'{"type":"pong"}'
CLOSE_REPLACED: Final = 4001  # the identity was resumed by a newer connection


CALL_FIELDS: Final = ("access_token", "display_name", "metadata", "auto_subscribe")
"""Fields of a ``join`` that only call rooms read (seed 003); passed on unparsed."""


@dataclass(frozen=True, slots=True)
class Join:
    """Join ``room`` as ``client`` (server picks an ID when None), resuming with ``token``.

    ``topology`` (``mesh`` or ``sfu``) and ``call`` (the :data:`CALL_FIELDS` present) are
    for call rooms; a seed 000 client sends neither."""

    room: str
    client: str | None
    token: str | None
    topology: str | None = None
    call: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the current room."""


@dataclass(frozen=True, slots=True)
class Ping:
    """Application-level heartbeat; answered with ``pong``."""


@dataclass(frozen=True, slots=True)
class Signal:
    """offer/answer/candidate/hangup for the member ``to``; ``body`` is relayed verbatim."""

    kind: str
    to: str
    body: dict[str, Any]


RoomsMessage = Join | Leave | Ping | Signal

_LEAVE: Final = Leave()
_PING: Final = Ping()


def decode_signal(obj: dict[str, Any], limits: SdpLimits) -> tuple[str, dict[str, Any]]:
    """``(to, body)`` of an offer/answer/candidate/hangup frame, validated as :func:`decode`
    does, without building a :class:`Signal`.

    The relay hot path uses it: constructing a frozen dataclass costs about a microsecond
    (an ``object.__setattr__`` call per field), a sixth of the Python time of a relay.
    """
    to = require_str(obj, "to")
    kind = obj["type"]
    if kind == "candidate":
        if "candidate" not in obj:
            raise MissingField("'candidate' needs 'candidate' (an RTCIceCandidateInit or null)")
        return to, {"candidate": check_candidate(obj["candidate"], "candidate")}
    if kind == "hangup":
        return to, {}
    return to, {"sdp": check_description(obj.get("sdp"), "sdp", limits)}


def decode(obj: dict[str, Any], limits: SdpLimits) -> RoomsMessage:
    """Turn a parsed frame (see :func:`~rtchub.wire.frame.parse_frame`) into a message."""
    kind = obj["type"]
    if kind in SIGNAL_TYPES:
        to, body = decode_signal(obj, limits)
        return Signal(kind, to, body)
    if kind == "ping":
        return _PING
    if kind == "join":
        room = require_str(obj, "room")
        client = obj.get("from")
        if client is not None and not isinstance(client, str):
            raise InvalidField("'from' must be a string (your client ID)")
        token = obj.get("token")
        if token is not None and not isinstance(token, str):
            raise InvalidField("'token' must be a string")
        topology = obj.get("topology")
        if topology is not None and topology not in ("mesh", "sfu"):
            raise InvalidField("'topology' must be \"mesh\" or \"sfu\"")
        call: dict[str, Any] | None = {
            name: obj[name] for name in CALL_FIELDS if name in obj} or None
        return Join(room, client, token, topology, call)
    if kind == "leave":
        return _LEAVE
    raise UnknownType(f"unknown message type {kind[:40]!r}")


def encode_relayed(event: Relayed) -> bytes:
    """Render a relayed signaling message (the hot path: sessions call it directly)."""
    return dumps({"type": event.kind, "room": event.room, "from": event.sender,
                  "to": event.to, **event.body})


def encode_event(event: RoomEvent) -> bytes | None:
    """Render a core event for a rooms client (None: nothing to send)."""
    if type(event) is Relayed:
        return encode_relayed(event)
    if type(event) is RoomMembers:
        return dumps({"type": "room_members", "room": event.room,
                      "members": list(event.members)})
    if type(event) is Joined:
        body = {"type": "joined", "room": event.room, "from": event.member,
                "members": list(event.members), "token": event.token,
                "topology": event.topology}
        if event.call:
            body.update(event.call)
        return dumps(body)
    if type(event) is Replaced:
        return None
    return None


