"""What the call service tells participants, as typed events for the courier.

Each is rendered by the call-room dialect of the participant's connection
(:mod:`.wire`), or handed to the sink a Python API participant gave at its join.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.rules import ParticipantState, RecordingInfo, TrackInfo

__all__ = ["EVENTS", "ActiveSpeaker", "CallEvent", "Chat", "ParticipantsChanged", "PeerFailed",
           "QualityChanged", "RecordingChanged", "ServerOffer", "TracksChanged"]


@dataclass(frozen=True, slots=True)
class ParticipantsChanged:
    """Someone joined, left or changed their audio / video / screen state."""

    room: str
    participants: tuple[ParticipantState, ...]


@dataclass(frozen=True, slots=True)
class TracksChanged:
    """A track was published, unpublished, relabelled, muted or unmuted (the full list)."""

    room: str
    tracks: tuple[TrackInfo, ...]


@dataclass(frozen=True, slots=True)
class ActiveSpeaker:
    """The loudest participant now (None: nobody speaks)."""

    room: str
    participant: str | None


@dataclass(frozen=True, slots=True)
class RecordingChanged:
    """The room's recording changed state (started, paused, resumed, stopped, failed)."""

    room: str
    recording: RecordingInfo


@dataclass(frozen=True, slots=True)
class Chat:
    """A chat line from ``sender`` (sent on the socket or on the "chat" data channel)."""

    room: str
    sender: str
    text: str
    ts: float


@dataclass(frozen=True, slots=True)
class ServerOffer:
    """The server's peer offers to the participant (its subscriptions changed)."""

    room: str
    participant: str
    sdp: str


@dataclass(frozen=True, slots=True)
class PeerFailed:
    """The participant's peer connection with the server ended with an error
    (``code`` as in :mod:`rtchub.errors`: signaling_timeout, connection_failed, ...)."""

    room: str
    participant: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class QualityChanged:
    """Everyone's connection quality in an SFU room as the server measures it, after an
    interval in which someone's changed."""

    room: str
    qualities: tuple[ConnectionQuality, ...]


CallEvent = (ParticipantsChanged | TracksChanged | ActiveSpeaker | RecordingChanged | Chat
             | ServerOffer | PeerFailed | QualityChanged)
EVENTS = (ParticipantsChanged, TracksChanged, ActiveSpeaker, RecordingChanged, Chat,
          ServerOffer, PeerFailed, QualityChanged)
