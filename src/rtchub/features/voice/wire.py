"""Seed 002's voice broadcast protocol: typed messages, decoding and encoding.

Wire format (docs/voice.md has an example of every message)::

    client -> server   start_sending {name?} | webrtc_offer {offer: {sdp, type}}
                       start_receiving {stream_id?} | webrtc_answer {answer: {sdp, type}}
                       ice_candidate {candidate} | get_available_streams | stop_stream
                       local_ip {ip}  (accepted and ignored)
    server -> client   available_streams {streams, details} | sender_ready {connection_id}
                       webrtc_answer {answer} | webrtc_offer {offer, stream_id}
                       stream_available {stream_id, name, started_at}
                       stream_ended {stream_id} | stream_listeners {stream_id, webrtc, mp3}
                       error {code, error, message}

``details``, ``name``, ``started_at`` and ``stream_listeners`` are rtchub's additions for
its voice page; seed 002's clients ignore them.

The type names do not collide with the rooms protocol's, so both are spoken on
``/ws``; ``/ws/voice`` speaks only this one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rtchub.errors import InvalidField, UnknownType
from rtchub.features.voice.rules import MAX_NAME, StreamInfo
from rtchub.wire.frame import dumps
from rtchub.wire.webrtc import SdpLimits, check_candidate, check_description

__all__ = [
    "TYPES",
    "GetAvailableStreams",
    "IceCandidate",
    "LocalIp",
    "StartReceiving",
    "StartSending",
    "StopStream",
    "VoiceMessage",
    "WebrtcAnswer",
    "WebrtcOffer",
    "available_streams",
    "decode",
    "sender_ready",
    "stream_available",
    "stream_ended",
    "stream_listeners",
    "webrtc_answer",
    "webrtc_offer",
]

TYPES: Final = frozenset({"start_sending", "start_receiving", "webrtc_offer", "webrtc_answer",
                          "ice_candidate", "get_available_streams", "stop_stream",
                          "local_ip"})
MAX_STREAM_ID: Final = 128


@dataclass(frozen=True, slots=True)
class StartSending:
    """Register as the sender of a new stream, labelled ``name`` (optional)."""

    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None and len(self.name) > MAX_NAME:
            raise InvalidField(f"'name' must be at most {MAX_NAME} characters")


@dataclass(frozen=True, slots=True)
class StartReceiving:
    """Receive ``stream_id`` (the latest stream when None)."""

    stream_id: str | None

    def __post_init__(self) -> None:
        if self.stream_id is not None and not (0 < len(self.stream_id) <= MAX_STREAM_ID):
            raise InvalidField(f"'stream_id' must be 1 to {MAX_STREAM_ID} characters")


@dataclass(frozen=True, slots=True)
class WebrtcOffer:
    """A sender's offer SDP."""

    sdp: str


@dataclass(frozen=True, slots=True)
class WebrtcAnswer:
    """A receiver's answer SDP."""

    sdp: str


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """A trickled candidate (``None``: end of candidates)."""

    candidate: str | None
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclass(frozen=True, slots=True)
class GetAvailableStreams:
    """Ask for the live stream IDs."""


@dataclass(frozen=True, slots=True)
class StopStream:
    """Close this connection's peer connection; keep the WebSocket."""


@dataclass(frozen=True, slots=True)
class LocalIp:
    """The client's local IP, informational only (seed 002 ignores it; so does rtchub)."""


VoiceMessage = (StartSending | StartReceiving | WebrtcOffer | WebrtcAnswer | IceCandidate
                | GetAvailableStreams | StopStream | LocalIp)

_GET: Final = GetAvailableStreams()
_STOP: Final = StopStream()
_LOCAL_IP: Final = LocalIp()


def _description(obj: dict[str, Any], field: str, kind: str, limits: SdpLimits) -> str:
    desc = check_description(obj.get(field), field, limits, kinds=frozenset({kind}),
                             default=kind)
    sdp: str = desc["sdp"]
    return sdp


def _candidate(obj: dict[str, Any]) -> IceCandidate:
    cand = obj.get("candidate")
    if isinstance(cand, str):
        if len(cand) > 4096:
            raise InvalidField("'candidate' must be at most 4096 characters")
        return IceCandidate(cand or None, None, 0)
    init = check_candidate(cand, "candidate")
    if init is None:
        return IceCandidate(None, None, None)
    return IceCandidate(init.get("candidate") or None, init.get("sdpMid"),
                        init.get("sdpMLineIndex"))


def decode(obj: dict[str, Any], limits: SdpLimits) -> VoiceMessage:
    """Turn a parsed frame into a voice message; raises the one error vocabulary."""
    kind = obj["type"]
    if kind == "start_sending":
        name = obj.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidField("'name' must be a string")
        return StartSending(name.strip() or None if name is not None else None)
    if kind == "start_receiving":
        stream_id = obj.get("stream_id")
        if stream_id is not None and not isinstance(stream_id, str):
            raise InvalidField("'stream_id' must be a string")
        return StartReceiving(stream_id or None)
    if kind == "webrtc_offer":
        return WebrtcOffer(_description(obj, "offer", "offer", limits))
    if kind == "webrtc_answer":
        return WebrtcAnswer(_description(obj, "answer", "answer", limits))
    if kind == "ice_candidate":
        return _candidate(obj)
    if kind == "get_available_streams":
        return _GET
    if kind == "stop_stream":
        return _STOP
    if kind == "local_ip":
        return _LOCAL_IP
    raise UnknownType(f"unknown message type {kind[:40]!r}")


def available_streams(streams: Sequence[StreamInfo],
                      listeners: Callable[[str], int]) -> bytes:
    """``available_streams {streams, details}``: seed 002's ID list, and rtchub's details."""
    return dumps({"type": "available_streams", "streams": [s.stream_id for s in streams],
                  "details": [{"stream_id": s.stream_id, "name": s.name,
                               "started_at": s.started_at, "listeners": listeners(s.stream_id)}
                              for s in streams]})


def sender_ready(connection_id: str) -> bytes:
    """``sender_ready {connection_id}``."""
    return dumps({"type": "sender_ready", "connection_id": connection_id})


def webrtc_answer(sdp: str) -> bytes:
    """The server's answer to a sender."""
    return dumps({"type": "webrtc_answer", "answer": {"sdp": sdp, "type": "answer"}})


def webrtc_offer(sdp: str, stream_id: str) -> bytes:
    """The server's offer to a receiver (``stream_id`` says which stream it carries)."""
    return dumps({"type": "webrtc_offer", "offer": {"sdp": sdp, "type": "offer"},
                  "stream_id": stream_id})


def stream_available(stream_id: str, name: str, started_at: float) -> bytes:
    """Broadcast: a stream went live."""
    return dumps({"type": "stream_available", "stream_id": stream_id, "name": name,
                  "started_at": started_at})


def stream_ended(stream_id: str) -> bytes:
    """Broadcast: a stream ended."""
    return dumps({"type": "stream_ended", "stream_id": stream_id})


def stream_listeners(stream_id: str, webrtc: int, mp3: int) -> bytes:
    """To a sender: how many listen now."""
    return dumps({"type": "stream_listeners", "stream_id": stream_id, "webrtc": webrtc,
                  "mp3": mp3})
