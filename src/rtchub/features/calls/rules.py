"""The call-room model (seed 003) and the pure decisions about it.

A call room has a topology: ``mesh`` (the server relays signaling, as seed 000's rooms do;
media flows between the browsers) or ``sfu`` (each participant holds one peer connection
with the server, which forwards RTP). Its participants carry seed 003's state (display
name, metadata, audio / video / screen sharing, when they joined) and, in SFU rooms, the
tracks they publish (each with its source and mute state), what each one subscribes to,
and at which quality.

Nothing here does I/O or keeps time: the service (:mod:`.service`) passes ``now`` in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from rtchub.errors import InvalidField, InvalidQuality, RoomFull, SFUNotEnabled, TrackNotFound

__all__ = [
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_QUALITY",
    "KINDS",
    "MAX_DISPLAY_NAME",
    "MAX_METADATA_KEYS",
    "QUALITIES",
    "RECORDS",
    "RECORD_ACTIONS",
    "SOURCES",
    "CallRoom",
    "Grants",
    "Participant",
    "ParticipantState",
    "RecordingInfo",
    "Topology",
    "TrackInfo",
    "check_kind",
    "check_quality",
    "check_source",
    "clean_display_name",
    "clean_metadata",
    "default_source",
    "muted_state",
    "parse_topology",
    "quality_layer",
]

QUALITIES: Final = ("low", "medium", "high")
"""Seed 003's quality names; like forge, simulcast layers 0, 1, 2 (q, h, f)."""
DEFAULT_QUALITY: Final = "low"
"""What a new subscriber gets until it asks (forge starts new subscribers low)."""
SOURCES: Final = ("microphone", "camera", "screen")
RECORD_ACTIONS: Final = ("start", "stop", "pause", "resume", "status")
KINDS: Final = ("audio", "video")
DEFAULT_MAX_MEMBERS: Final = 50
MAX_METADATA_KEYS: Final = 32
MAX_DISPLAY_NAME: Final = 128


class Topology(enum.Enum):
    """How a room's media flows."""

    MESH = "mesh"
    SFU = "sfu"


def parse_topology(value: object) -> Topology:
    """``"mesh"`` or ``"sfu"`` (a :class:`Topology` passes through); else InvalidField."""
    if isinstance(value, Topology):
        return value
    if value == "mesh":
        return Topology.MESH
    if value == "sfu":
        return Topology.SFU
    raise InvalidField(f"'topology' must be \"mesh\" or \"sfu\", got {str(value)[:40]!r}")


def check_quality(value: object) -> str:
    """One of :data:`QUALITIES`; anything else raises :class:`InvalidQuality`."""
    if isinstance(value, str) and value in QUALITIES:
        return value
    raise InvalidQuality(f"quality must be one of {', '.join(QUALITIES)}, "
                         f"got {str(value)[:40]!r}")


def quality_layer(quality: str) -> int:
    """The simulcast layer of a quality name: low 0, medium 1, high 2 (the most a
    subscriber gets; a track with fewer layers gives its highest below)."""
    return QUALITIES.index(check_quality(quality))


def check_source(value: object) -> str:
    """One of :data:`SOURCES`; else InvalidField."""
    if isinstance(value, str) and value in SOURCES:
        return value
    raise InvalidField(f"'source' must be one of {', '.join(SOURCES)}, "
                       f"got {str(value)[:40]!r}")


def check_kind(value: object) -> str:
    """``"audio"`` or ``"video"``; else InvalidField."""
    if isinstance(value, str) and value in KINDS:
        return value
    raise InvalidField(f"'kind' must be \"audio\" or \"video\", got {str(value)[:40]!r}")


def default_source(kind: str) -> str:
    """The source of a track nobody labelled: audio is the microphone, video the camera."""
    return "microphone" if kind == "audio" else "camera"


@dataclass(frozen=True, slots=True)
class Grants:
    """What a participant may do in a call room (a join token's grants; LiveKit's shape).

    ``identity`` is the participant id the token names (None: the client chooses, as a
    guest does); ``room`` the room it is valid for (None: any).
    """

    identity: str | None = None
    room: str | None = None
    publish: bool = True
    subscribe: bool = True
    record: bool = False
    admin: bool = False

    def to_wire(self) -> dict[str, bool]:
        """The ``grants`` object of ``joined``."""
        return {"publish": self.publish, "subscribe": self.subscribe,
                "record": self.record, "admin": self.admin}


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """A track published in an SFU room, as everyone is told about it."""

    track_id: str
    publisher: str
    kind: str
    source: str
    stream_id: str
    muted: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The ``T`` object of the wire protocol."""
        return {"track_id": self.track_id, "publisher": self.publisher, "kind": self.kind,
                "source": self.source, "stream_id": self.stream_id, "muted": self.muted}


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """A participant as everyone is told about it (a snapshot of :class:`Participant`)."""

    id: str
    display_name: str
    metadata: dict[str, Any]
    audio: bool
    video: bool
    screen: bool
    joined_at: float

    def to_wire(self) -> dict[str, Any]:
        """The ``P`` object of the wire protocol."""
        return {"id": self.id, "display_name": self.display_name, "metadata": self.metadata,
                "audio": self.audio, "video": self.video, "screen": self.screen,
                "joined_at": self.joined_at}


@dataclass(slots=True)
class Participant:
    """One participant of a call room (seed 003's ``ParticipantInfo``, and more)."""

    id: str
    display_name: str
    metadata: dict[str, Any]
    audio: bool
    video: bool
    joined_at: float  # Unix seconds
    grants: Grants = field(default_factory=Grants)
    screen: bool = False
    auto_subscribe: bool = True
    # SFU rooms: track ids this participant receives, and the quality asked per track
    subscriptions: set[str] = field(default_factory=set)
    qualities: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # track id -> declared source
    held: set[str] = field(default_factory=set)  # kinds an admin muted ("audio", "video")

    def state(self) -> ParticipantState:
        """What everyone is told about this participant now."""
        return ParticipantState(self.id, self.display_name, self.metadata, self.audio,
                                self.video, self.screen, self.joined_at)

    def to_wire(self) -> dict[str, Any]:
        """The ``P`` object of the wire protocol."""
        return self.state().to_wire()


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A room recording as the call feature reports it (the media layer's status, reduced)."""

    state: str = "idle"  # idle, recording, paused, stopping, stopped, failed
    started_at: float | None = None
    duration: float = field(default=0.0, compare=False)  # changes every instant
    directory: str | None = None
    files: tuple[str, ...] = ()
    reason: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The fields of the ``recording`` frame (and of ``joined.recording``)."""
        out: dict[str, Any] = {"state": self.state}
        if self.started_at is not None:
            out["started_at"] = self.started_at
            out["duration"] = self.duration
        if self.directory is not None:
            out["directory"] = self.directory
        if self.files:
            out["files"] = list(self.files)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def clean_metadata(value: object) -> dict[str, Any]:
    """A participant's metadata: a JSON object of at most 32 keys (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidField("'metadata' must be a JSON object")
    if len(value) > MAX_METADATA_KEYS:
        raise InvalidField(f"'metadata' may hold at most {MAX_METADATA_KEYS} keys")
    return dict(value)


def clean_display_name(value: object, fallback: str) -> str:
    """A display name (None: ``fallback``, the participant id)."""
    if value is None:
        return fallback
    if not isinstance(value, str) or len(value) > MAX_DISPLAY_NAME:
        raise InvalidField(f"'display_name' must be a string of at most {MAX_DISPLAY_NAME} "
                           f"characters")
    return value


@dataclass(slots=True)
class CallRoom:
    """A call room: its topology, participants in join order, and published tracks."""

    id: str
    topology: Topology = Topology.MESH
    name: str = ""
    max_members: int = DEFAULT_MAX_MEMBERS
    created_by_api: bool = False  # kept when empty (deleted by delete_call_room)
    participants: dict[str, Participant] = field(default_factory=dict)
    tracks: dict[str, TrackInfo] = field(default_factory=dict)  # track id -> track
    speaker: str | None = None
    recording: RecordingInfo = field(default_factory=RecordingInfo)

    def __post_init__(self) -> None:
        if self.max_members <= 0:
            raise InvalidField(f"max_members must be positive, got {self.max_members}")
        if not self.name:
            self.name = self.id

    @property
    def is_sfu(self) -> bool:
        """True for SFU rooms."""
        return self.topology is Topology.SFU

    def require_sfu(self, what: str) -> None:
        """Raise :class:`SFUNotEnabled` in a mesh room."""
        if not self.is_sfu:
            raise SFUNotEnabled(f"{what} needs an SFU room; room {self.id!r} is mesh")

    def check_room_for(self, participant_id: str) -> None:
        """A newcomer needs a free place (a participant rejoining has its own)."""
        if participant_id not in self.participants and \
                len(self.participants) >= self.max_members:
            raise RoomFull(f"room {self.id!r} is full ({self.max_members} members)")

    def track(self, track_id: str) -> TrackInfo:
        """The published track ``track_id``; :class:`TrackNotFound` if there is none."""
        found = self.tracks.get(track_id)
        if found is None:
            raise TrackNotFound(f"track {track_id[:80]!r} is not published in room "
                                f"{self.id!r}")
        return found

    def tracks_of(self, participant_id: str) -> list[TrackInfo]:
        """What one participant publishes now."""
        return [t for t in self.tracks.values() if t.publisher == participant_id]

    def publishing(self, participant_id: str, kind: str, source: str | None = None
                   ) -> list[TrackInfo]:
        """A participant's tracks of ``kind`` (and ``source``, when given)."""
        return [t for t in self.tracks_of(participant_id)
                if t.kind == kind and (source is None or t.source == source)]

    def participants_wire(self) -> list[dict[str, Any]]:
        """Every participant as ``P`` objects, in join order."""
        return [p.to_wire() for p in self.participants.values()]

    def tracks_wire(self) -> list[dict[str, Any]]:
        """Every track as ``T`` objects, in publish order."""
        return [t.to_wire() for t in self.tracks.values()]


def muted_state(participant: Participant, track: TrackInfo) -> bool:
    """Whether ``track`` is muted given its publisher's audio / video / screen state."""
    if track.kind == "audio":
        return not participant.audio
    if track.source == "screen":
        return not participant.screen
    return not participant.video


# what crosses nodes inside call events (registered with the cluster codec)
RECORDS = (Grants, TrackInfo, ParticipantState, RecordingInfo)
