"""Seed 002's voice broadcast protocol: typed messages, decoding and encoding.

Wire format (docs/voice.md has an example of every message)::

    client -> server   start_sending | webrtc_offer {offer: {sdp, type}}
                       start_receiving {stream_id?} | webrtc_answer {answer: {sdp, type}}
                       ice_candidate {candidate} | get_available_streams | stop_stream
                       local_ip {ip}  (accepted and ignored)
    server -> client   available_streams {streams} | sender_ready {connection_id}
                       webrtc_answer {answer} | webrtc_offer {offer}
                       stream_available {stream_id} | stream_ended {stream_id}
                       error {code, error, message}

The type names do not collide with the rooms protocol's, so both are spoken on
``/ws``; ``/ws/voice`` speaks only this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from rtchub.errors import InvalidField, InvalidSDP, MissingField, UnknownType
from rtchub.wire.frame import dumps

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
    "webrtc_answer",
    "webrtc_offer",
]

TYPES: Final = frozenset({"start_sending", "start_receiving", "webrtc_offer", "webrtc_answer",
                          "ice_candidate", "get_available_streams", "stop_stream",
                          "local_ip"})
MAX_STREAM_ID: Final = 128
MAX_SDP: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class StartSending:
    """Register as the sender of a new stream."""


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

_START_SENDING: Final = StartSending()
_GET: Final = GetAvailableStreams()
_STOP: Final = StopStream()
_LOCAL_IP: Final = LocalIp()


def _description(obj: dict[str, Any], field: str, kind: str) -> str:
    desc = obj.get(field)
    if desc is None:
        raise MissingField(f"'{obj['type']}' needs '{field}' ({{sdp, type}})")
    if not isinstance(desc, dict):
        raise InvalidSDP(f"'{field}' must be an object {{sdp, type}}")
    sdp_type = desc.get("type", kind)
    if sdp_type != kind:
        raise InvalidSDP(f"'{field}.type' must be {kind!r}, got {str(sdp_type)[:20]!r}")
    sdp = desc.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v="):
        raise InvalidSDP(f"'{field}.sdp' must be a session description starting with 'v='")
    if len(sdp) > MAX_SDP:
        raise InvalidSDP(f"'{field}.sdp' is {len(sdp)} characters; the limit is {MAX_SDP}")
    return sdp


def _candidate(obj: dict[str, Any]) -> IceCandidate:
    cand = obj.get("candidate")
    if cand is None:
        return IceCandidate(None, None, None)
    if isinstance(cand, str):
        return IceCandidate(cand or None, None, 0)
    if not isinstance(cand, dict):
        raise InvalidField("'candidate' must be an RTCIceCandidateInit object, a string or null")
    text, mid, index = cand.get("candidate"), cand.get("sdpMid"), cand.get("sdpMLineIndex")
    if text is not None and not isinstance(text, str):
        raise InvalidField("'candidate.candidate' must be a string")
    if mid is not None and not isinstance(mid, str):
        raise InvalidField("'candidate.sdpMid' must be a string or null")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool)
                              or not 0 <= index < 1024):
        raise InvalidField("'candidate.sdpMLineIndex' must be a small integer or null")
    return IceCandidate(text or None, mid, index)


def decode(obj: dict[str, Any]) -> VoiceMessage:
    """Turn a parsed frame into a voice message; raises the one error vocabulary."""
    kind = obj["type"]
    if kind == "start_sending":
        return _START_SENDING
    if kind == "start_receiving":
        stream_id = obj.get("stream_id")
        if stream_id is not None and not isinstance(stream_id, str):
            raise InvalidField("'stream_id' must be a string")
        return StartReceiving(stream_id or None)
    if kind == "webrtc_offer":
        return WebrtcOffer(_description(obj, "offer", "offer"))
    if kind == "webrtc_answer":
        return WebrtcAnswer(_description(obj, "answer", "answer"))
    if kind == "ice_candidate":
        return _candidate(obj)
    if kind == "get_available_streams":
        return _GET
    if kind == "stop_stream":
        return _STOP
    if kind == "local_ip":
        return _LOCAL_IP
    raise UnknownType(f"unknown message type {kind[:40]!r}")


def available_streams(streams: Sequence[str]) -> bytes:
    """``available_streams {streams}``."""
    return dumps({"type": "available_streams", "streams": list(streams)})


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


def stream_available(stream_id: str) -> bytes:
    """Broadcast: a stream went live."""
    return dumps({"type": "stream_available", "stream_id": stream_id})


def stream_ended(stream_id: str) -> bytes:
    """Broadcast: a stream ended."""
    return dumps({"type": "stream_ended", "stream_id": stream_id})
