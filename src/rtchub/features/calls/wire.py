"""The call-room frames of the rooms dialect (seed 003 over ``/ws`` and ``/ws/rooms``).

Wire format (docs/protocol.md, "Call rooms", has an example of every message)::

    client -> server   sfu_offer {sdp} | sfu_answer {sdp} | sfu_candidate {candidate}
                       publish {track_id, source} | subscribe {track_id}
                       unsubscribe {track_id} | set_quality {track_id, quality}
                       media_state {audio?, video?, screen?} | mute / unmute {participant, kind}
                       record {action} | chat {text}
    server -> client   sfu_answer {sdp} | sfu_ignored | sfu_offer {sdp}
                       participants {room, participants} | tracks {room, tracks}
                       active_speaker {room, participant} | recording {room, state, ...}
                       chat {room, from, text, ts} | quality {room, participants}
                       error {code, error, message}

``join`` and ``joined`` belong to the rooms dialect, which asks this feature for the
call-room fields of ``joined`` (:func:`joined_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from rtchub.errors import InvalidField, InvalidSDP, MessageTooLarge, MissingField, UnknownType
from rtchub.features.calls.events import (
    ActiveSpeaker,
    CallEvent,
    Chat,
    ParticipantsChanged,
    PeerFailed,
    QualityChanged,
    RecordingChanged,
    ServerOffer,
    TracksChanged,
)
from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.rules import KINDS, RECORD_ACTIONS
from rtchub.wire.frame import dumps, require_str
from rtchub.wire.webrtc import check_candidate

__all__ = [
    "SFU_IGNORED",
    "TYPES",
    "CallMessage",
    "Candidate",
    "ChatLine",
    "Description",
    "MediaState",
    "Moderate",
    "Publish",
    "Quality",
    "Record",
    "Subscribe",
    "decode",
    "encode_answer",
    "encode_event",
    "encode_recording",
    "quality_to_wire",
]

TYPES: Final = frozenset({"sfu_offer", "sfu_answer", "sfu_candidate", "publish", "subscribe",
                          "unsubscribe", "set_quality", "media_state", "mute", "unmute",
                          "record", "chat"})
SFU_IGNORED: Final = b'{"type":"sfu_ignored"}'
MAX_TRACK_ID: Final = 256


@dataclass(frozen=True, slots=True)
class Description:
    """``sfu_offer`` / ``sfu_answer`` from the client: an SDP string."""

    kind: str  # "offer" or "answer"
    sdp: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """``sfu_candidate``: a trickled ICE candidate (None: end of candidates)."""

    candidate: str | None
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclass(frozen=True, slots=True)
class Publish:
    """``publish``: what a track the client sends is (microphone, camera, screen)."""

    track_id: str
    source: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``subscribe`` (``on``) or ``unsubscribe`` one track."""

    track_id: str
    on: bool


@dataclass(frozen=True, slots=True)
class Quality:
    """``set_quality``: the layer wanted of a track (validated by the service)."""

    track_id: str
    quality: object


@dataclass(frozen=True, slots=True)
class MediaState:
    """``media_state``: the client's own audio / video / screen state (None: unchanged)."""

    audio: bool | None
    video: bool | None
    screen: bool | None


@dataclass(frozen=True, slots=True)
class Moderate:
    """``mute`` / ``unmute`` another participant's audio or video (admin grant)."""

    participant: str
    kind: str
    mute: bool


@dataclass(frozen=True, slots=True)
class Record:
    """``record``: start, stop, pause, resume or status of the room's recording."""

    action: str


@dataclass(frozen=True, slots=True)
class ChatLine:
    """``chat`` over the socket."""

    text: str


CallMessage = (Description | Candidate | Publish | Subscribe | Quality | MediaState | Moderate
               | Record | ChatLine)


def _sdp(obj: dict[str, Any], max_bytes: int) -> str:
    value = obj.get("sdp")
    if isinstance(value, dict):   # an RTCSessionDescriptionInit is accepted too
        value = value.get("sdp")
    if value is None:
        raise MissingField(f"'{obj['type']}' needs 'sdp' (the SDP text)")
    if not isinstance(value, str) or not value.startswith("v="):
        raise InvalidSDP("'sdp' must be an SDP text starting with 'v='")
    if len(value) > max_bytes:
        raise MessageTooLarge(f"'sdp' is larger than {max_bytes} bytes")
    return value


def _track_id(obj: dict[str, Any]) -> str:
    track_id = require_str(obj, "track_id")
    if not track_id or len(track_id) > MAX_TRACK_ID:
        raise InvalidField(f"'track_id' must be 1-{MAX_TRACK_ID} characters")
    return track_id


def _flag(obj: dict[str, Any], name: str) -> bool | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidField(f"'{name}' must be true or false")
    return value


def decode(obj: dict[str, Any], max_sdp: int) -> CallMessage:
    """A parsed frame of one of :data:`TYPES` as a typed message (no I/O)."""
    kind = obj["type"]
    if kind == "sfu_offer":
        return Description("offer", _sdp(obj, max_sdp))
    if kind == "sfu_answer":
        return Description("answer", _sdp(obj, max_sdp))
    if kind == "sfu_candidate":
        if "candidate" not in obj:
            raise MissingField("'sfu_candidate' needs 'candidate' (an RTCIceCandidateInit "
                               "or null)")
        init = check_candidate(obj["candidate"], "candidate")
        if init is None or not init.get("candidate"):
            return Candidate(None, None, None)
        return Candidate(init["candidate"], init.get("sdpMid"), init.get("sdpMLineIndex"))
    if kind == "publish":
        source = obj.get("source")
        if source is not None and not isinstance(source, str):
            raise InvalidField("'source' must be microphone, camera or screen")
        return Publish(_track_id(obj), source or "")
    if kind in ("subscribe", "unsubscribe"):
        return Subscribe(_track_id(obj), kind == "subscribe")
    if kind == "set_quality":
        if "quality" not in obj:
            raise MissingField("'set_quality' needs 'quality' (low, medium or high)")
        return Quality(_track_id(obj), obj["quality"])
    if kind == "media_state":
        return MediaState(_flag(obj, "audio"), _flag(obj, "video"), _flag(obj, "screen"))
    if kind in ("mute", "unmute"):
        target = require_str(obj, "participant")
        media = obj.get("kind", "audio")
        if media not in KINDS:
            raise InvalidField("'kind' must be \"audio\" or \"video\"")
        return Moderate(target, media, kind == "mute")
    if kind == "record":
        action = require_str(obj, "action")
        if action not in RECORD_ACTIONS:
            raise InvalidField(f"'action' must be one of {', '.join(RECORD_ACTIONS)}")
        return Record(action)
    if kind == "chat":
        return ChatLine(require_str(obj, "text"))
    raise UnknownType(f"unknown message type {kind[:40]!r}")


def encode_answer(sdp: str) -> bytes:
    """The server's answer to an ``sfu_offer``."""
    return dumps({"type": "sfu_answer", "sdp": sdp})


def encode_recording(room: str, event: RecordingChanged) -> bytes:
    """A ``recording`` frame."""
    return dumps({"type": "recording", "room": room, **event.recording.to_wire()})


def quality_to_wire(quality: ConnectionQuality) -> dict[str, Any]:
    """One participant's entry of a ``quality`` frame: ``id`` and every figure."""
    data = quality.to_dict()
    data.pop("room", None)
    return {"id": data.pop("peer_id"), **data}


def encode_event(event: CallEvent) -> bytes:
    """Render a call event for a client of the rooms dialect."""
    match event:
        case ServerOffer(sdp=sdp):
            return dumps({"type": "sfu_offer", "sdp": sdp})
        case ParticipantsChanged(room=room, participants=participants):
            return dumps({"type": "participants", "room": room,
                          "participants": [p.to_wire() for p in participants]})
        case TracksChanged(room=room, tracks=tracks):
            return dumps({"type": "tracks", "room": room,
                          "tracks": [t.to_wire() for t in tracks]})
        case ActiveSpeaker(room=room, participant=participant):
            return dumps({"type": "active_speaker", "room": room, "participant": participant})
        case RecordingChanged(room=room):
            return encode_recording(room, event)
        case Chat(room=room, sender=sender, text=text, ts=ts):
            return dumps({"type": "chat", "room": room, "from": sender, "text": text, "ts": ts})
        case QualityChanged(room=room, qualities=qualities):
            return dumps({"type": "quality", "room": room,
                          "participants": [quality_to_wire(q) for q in qualities]})
        case PeerFailed(code=code, message=message):
            # its own frame: an `error` with the same code can answer a request (a refused
            # `record` is connection_failed too), this one is never an answer
            return dumps({"type": "sfu_failed", "code": code, "error": message,
                          "message": message})
    raise TypeError(f"not a call event: {type(event).__name__}")
