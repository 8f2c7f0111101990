"""Seed 001's Socket.IO events as typed messages: decode with validation, encode replies.

Pure: no sockets. Each client event becomes one frozen dataclass, validated in
:func:`decode` (the limits come from :class:`~rtchub.config.Limits`); server
events are built by the ``*_payload`` functions with the seed's field names
(including its ``Message:recived`` spelling).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from rtchub.config import Limits
from rtchub.errors import (
    InvalidField,
    MessageTooLarge,
    MissingField,
    ProtocolError,
    RtcHubError,
    UnknownType,
)
from rtchub.wire.webrtc import SdpLimits, check_candidate, check_description

__all__ = [
    "CLIENT_EVENTS",
    "Answer",
    "IceCandidate",
    "MatchMessage",
    "NewMessage",
    "Offer",
    "RequestRoom",
    "StopCall",
    "decode",
    "error_payload",
]

REQUEST_ROOM: Final = "request-room"
OFFER: Final = "negotiation-call-offer"
ANSWER: Final = "negotiation-call-answer"
ICE: Final = "send-new-ice-candidates"
STOP: Final = "stop-call"
NEW_MESSAGE: Final = "newMessage"
CLIENT_EVENTS: Final = (REQUEST_ROOM, OFFER, ANSWER, ICE, STOP, NEW_MESSAGE)

# server -> client
MATCH_DONE: Final = "match-done"
NEW_ICE: Final = "new-ice-candidates"
STOPPED: Final = "stop-by-remote-user"
MESSAGE_RECEIVED: Final = "Message:recived"   # sic: the seed's spelling
ERROR: Final = "error"

MAX_SOCKET_ID: Final = 64

@dataclass(frozen=True, slots=True)
class RequestRoom:
    """``request-room``: queue me (again) under ``name``; ``room_id`` is the room just left."""

    name: str
    room_id: str | None
    user_image: str


@dataclass(frozen=True, slots=True)
class Offer:
    """``negotiation-call-offer`` to ``remote_socket_id`` in ``room_id``."""

    offer: Mapping[str, Any]
    room_id: str
    remote_socket_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """``negotiation-call-answer`` to ``remote_socket_id`` in ``room_id``."""

    ans: Mapping[str, Any]
    room_id: str
    remote_socket_id: str


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """``send-new-ice-candidates`` to ``to``; ``candidate`` None is end-of-candidates."""

    to: str
    candidate: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class StopCall:
    """``stop-call``: end my call (or stop waiting)."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """``newMessage``: chat text for my partner (and echoed to me)."""

    message: str
    room_id: str | None
    remote_socket: str


MatchMessage = RequestRoom | Offer | Answer | IceCandidate | StopCall | NewMessage


def _fields(data: object) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise ProtocolError(f"expected an object payload, got {type(data).__name__}")
    return data


def _text(obj: Mapping[str, Any], key: str, limit: int, *, what: str | None = None,
          required: bool = True) -> str | None:
    value = obj.get(key)
    what = what or key
    if value is None:
        if required:
            raise MissingField(f"missing field {key!r}")
        return None
    if not isinstance(value, str):
        raise InvalidField(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise MessageTooLarge(f"{what} is {len(value)} characters; the limit is {limit}")
    return value


def _socket(obj: Mapping[str, Any], key: str) -> str:
    value = _text(obj, key, MAX_SOCKET_ID)
    assert value is not None
    if not value:
        raise InvalidField(f"{key} must name a socket")
    return value


def _room(obj: Mapping[str, Any], *, required: bool) -> str | None:
    value = _text(obj, "roomId", MAX_SOCKET_ID * 2, required=required)
    if value == "" and not required:
        return None
    return value


def _description(obj: Mapping[str, Any], key: str, kind: str, limits: Limits
                 ) -> Mapping[str, Any]:
    value = check_description(obj.get(key), key, SdpLimits(limits.sdp_max_bytes, None),
                              kinds=frozenset({kind}))
    return {"type": kind, "sdp": value["sdp"]}


def _candidate(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if "candidate" not in obj:
        raise MissingField("missing field 'candidate'")
    return check_candidate(obj["candidate"], "candidate")


def check_image(value: object, limit: int) -> str:
    """``userImage``: any string up to ``limit`` characters, passed to the partner as it is
    (pages show only ``data:image/...`` URLs); absent or null is ""."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidField(f"userImage must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise MessageTooLarge(f"userImage is {len(value)} characters; the limit is {limit} "
                              "(MATCH_MAX_IMAGE)")
    return value


def _name(obj: Mapping[str, Any], limit: int) -> str:
    value = _text(obj, "name", limit)
    assert value is not None
    name = value.strip()
    if not name:
        raise InvalidField("name must not be empty")
    if not name.isprintable():
        raise InvalidField("name must not contain control characters")
    return name


def decode(event: str, data: object, limits: Limits) -> MatchMessage:
    """Validate one client event into its typed message (raises an RtcHubError)."""
    if event == STOP:
        return StopCall()
    obj = _fields(data)
    if event == REQUEST_ROOM:
        return RequestRoom(_name(obj, limits.match_max_name), _room(obj, required=False),
                           check_image(obj.get("userImage"), limits.match_max_image))
    if event == OFFER:
        return Offer(_description(obj, "offer", "offer", limits), _room(obj, required=True) or "",
                     _socket(obj, "remoteSocketId"))
    if event == ANSWER:
        return Answer(_description(obj, "ans", "answer", limits),
                      _room(obj, required=True) or "",
                      _socket(obj, "remoteSocketId"))
    if event == ICE:
        return IceCandidate(_socket(obj, "to"), _candidate(obj))
    if event == NEW_MESSAGE:
        message = _text(obj, "message", limits.match_max_message)
        assert message is not None
        if not message.strip():
            raise InvalidField("message must not be empty")
        return NewMessage(message, _room(obj, required=False), _socket(obj, "remoteSocket"))
    raise UnknownType(f"unknown event {event[:80]!r}")


# -- server events --------------------------------------------------------------------


def match_done_payload(room: str, partner: str, name: str, image: str) -> dict[str, Any]:
    """``match-done``: the room and the stranger's details."""
    return {"roomId": room, "remoteUserDetails": {"socket": partner, "userName": name,
                                                  "userImage": image}}


def offer_payload(room: str, sender: str, name: str, offer: Any) -> dict[str, Any]:
    """``negotiation-call-offer`` as the receiver sees it."""
    return {"remoteUserDetails": {"socket": sender, "userName": name}, "roomId": room,
            "offer": offer}


def answer_payload(room: str, sender: str, name: str, ans: Any) -> dict[str, Any]:
    """``negotiation-call-answer`` as the receiver sees it (``remoteSocketId`` = sender)."""
    return {"ans": ans, "roomId": room, "name": name, "remoteSocketId": sender}


def error_payload(err: RtcHubError, event: str | None = None) -> dict[str, Any]:
    """The ``error`` event: ``{code, error, message, retry_after?, event?}``."""
    out: dict[str, Any] = {"code": err.code, "error": err.message, "message": err.message}
    retry = getattr(err, "retry_after", None)
    if retry is not None:
        out["retry_after"] = round(float(retry), 3)
    if event is not None:
        out["event"] = event
    return out
