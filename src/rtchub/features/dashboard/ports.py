"""What the dashboard reads, as read-only protocols and the records they return.

The dashboard knows no other feature: :mod:`rtchub.views` implements :class:`Sources`
over the rooms, call-room, voice, pairing and match services, and the media plane's
per-peer quality and simulcast layers arrive through :class:`QualityHistory` and
:class:`TrackLayers` (empty until the quality monitor and simulcast are wired).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rtchub.features.dashboard.rules import QualitySample

__all__ = ["CallParticipant", "CallRoomView", "CallTrack", "MatchView", "MeshRoom",
           "NoLayers", "NoQuality", "NoSources", "PairView", "QualityHistory", "QualitySample",
           "Sources", "StreamView", "TrackLayers"]



@dataclass(frozen=True, slots=True)
class MeshRoom:
    """A room of the rooms protocol (seed 000) as this node sees it."""

    id: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CallParticipant:
    """A call-room participant: its media state and what it receives (SFU rooms)."""

    id: str
    display_name: str
    audio: bool
    video: bool
    screen: bool
    joined_at: float
    subscriptions: tuple[str, ...] = ()
    qualities: Mapping[str, str] = field(default_factory=dict)  # track id -> low/medium/high


@dataclass(frozen=True, slots=True)
class CallTrack:
    """A published track of an SFU room."""

    track_id: str
    publisher: str
    kind: str
    source: str
    muted: bool


@dataclass(frozen=True, slots=True)
class CallRoomView:
    """A call room on this node."""

    id: str
    topology: str
    participants: tuple[CallParticipant, ...]
    tracks: tuple[CallTrack, ...]
    speaker: str | None
    recording: str


@dataclass(frozen=True, slots=True)
class StreamView:
    """A live voice stream (seed 002) and its audience."""

    stream_id: str
    name: str
    started_at: float
    webrtc: int
    mp3: int


@dataclass(frozen=True, slots=True)
class PairView:
    """A pairing (seed 004): which sides are connected, what waits in the mailbox."""

    app_id: str
    expires_at: float      # Unix seconds
    side_a: bool
    side_b: bool
    waiting: int           # messages in both inboxes
    waiting_bytes: int


@dataclass(frozen=True, slots=True)
class MatchView:
    """The match queue (seed 001): waiting users by display name, rooms of two."""

    queue: tuple[str, ...]
    queue_size: int
    rooms_active: int
    rooms_total: int


class Sources(Protocol):
    """Every feature's state, read-only, as this node sees it."""

    def mesh_rooms(self) -> Sequence[MeshRoom]:
        """Rooms of the rooms protocol (call rooms included: they ride it)."""
        ...

    def call_rooms(self) -> Sequence[CallRoomView]:
        """Call rooms (mesh and SFU)."""
        ...

    def streams(self) -> Sequence[StreamView]:
        """Live voice streams."""
        ...

    async def pairs(self) -> Sequence[PairView]:
        """Live pairings."""
        ...

    async def match(self) -> MatchView:
        """The match queue."""
        ...


class QualityHistory(Protocol):
    """Per-peer connection quality from the quality monitor (seed 003)."""

    def quality_history(self, room: str) -> Mapping[str, Sequence[QualitySample]]:
        """Recent samples of each peer of ``room`` (participant id -> oldest first)."""
        ...


class TrackLayers(Protocol):
    """Simulcast layers of published tracks and the one each subscriber gets."""

    def track_layers(self, room: str, track_id: str) -> Sequence[Mapping[str, object]]:
        """Layers the publisher sends, lowest first: ``{"rid", "width", "height", "kbps",
        "active"}`` (empty: no simulcast)."""
        ...

    def forwarded_layer(self, room: str, track_id: str, subscriber: str) -> str | None:
        """The rid forwarded to ``subscriber`` (None: not known, or no simulcast)."""
        ...


class NoSources:
    """Nothing to show (the dashboard before the composition root wires it)."""

    def mesh_rooms(self) -> Sequence[MeshRoom]:
        """No rooms."""
        return ()

    def call_rooms(self) -> Sequence[CallRoomView]:
        """No call rooms."""
        return ()

    def streams(self) -> Sequence[StreamView]:
        """No streams."""
        return ()

    async def pairs(self) -> Sequence[PairView]:
        """No pairs."""
        return ()

    async def match(self) -> MatchView:
        """An empty queue."""
        return MatchView((), 0, 0, 0)


class NoQuality:
    """No quality monitor wired: no samples."""

    def quality_history(self, room: str) -> Mapping[str, Sequence[QualitySample]]:
        """Nothing."""
        return {}


class NoLayers:
    """No simulcast wired: no layers."""

    def track_layers(self, room: str, track_id: str) -> Sequence[Mapping[str, object]]:
        """Nothing."""
        return ()

    def forwarded_layer(self, room: str, track_id: str, subscriber: str) -> str | None:
        """Not known."""
        return None
