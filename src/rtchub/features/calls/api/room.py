"""A call room, its SFU router and its recorder, as seed 003's objects in Python naming.

Thin handles on the call service: every decision (capacity, topology, grants, the
sentinel errors) is the service's; these only give it seed 003's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rtchub.base.clock import Clock
from rtchub.errors import PeerAlreadyExists, PeerNotFound
from rtchub.features.calls.api.localpeer import LocalPeer
from rtchub.features.calls.api.peer import PeerConnection, ServerPeer, Track
from rtchub.features.calls.quality import QualityMonitor
from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.rules import Grants, RecordingInfo, Topology
from rtchub.features.calls.service import CallService
from rtchub.media.sfu import SfuPeer

__all__ = ["CallRoom", "Participant", "Recorder", "SfuRouter", "TrackInfo"]


@dataclass(frozen=True, slots=True)
class Participant:
    """Seed 003's ``Participant``: who, their media state, when they joined, and in an
    SFU room the quality monitor's latest :class:`ConnectionQuality` of their connection
    (None until it is first measured)."""

    user_id: str
    display_name: str
    audio_enabled: bool
    video_enabled: bool
    screen_sharing: bool
    joined_at: datetime
    metadata: dict[str, Any]
    quality: ConnectionQuality | None = None


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """A published track as the SFU router lists it."""

    track_id: str
    publisher: str
    kind: str
    source: str
    muted: bool


class SfuRouter:
    """Seed 003's ``SFURouter`` for one room; every call on a mesh room raises
    :class:`~rtchub.errors.SFUNotEnabled`."""

    def __init__(self, calls: CallService, room: str) -> None:
        self._calls = calls
        self._room = room

    def subscribe_to_track(self, subscriber: str, publisher: str, track_id: str) -> None:
        """Forward ``publisher``'s ``track_id`` to ``subscriber`` (the server offers)."""
        self._calls.subscribe_to_track(self._room, subscriber, track_id, publisher)

    def unsubscribe_from_track(self, subscriber: str, track_id: str) -> None:
        """Stop forwarding ``track_id`` to ``subscriber``."""
        self._calls.unsubscribe_from_track(self._room, subscriber, track_id)

    def set_quality(self, track_id: str, receiver_id: str, quality: str) -> None:
        """``low``, ``medium`` or ``high`` (forge's layers 0, 1, 2); anything else raises
        :class:`~rtchub.errors.InvalidQuality`."""
        self._calls.set_quality(self._room, track_id, receiver_id, quality)

    def get_quality(self, track_id: str, receiver_id: str) -> str:
        """The quality ``receiver_id`` asked for (``high`` until asked)."""
        return self._calls.get_quality(self._room, track_id, receiver_id)

    def get_available_tracks(self) -> list[TrackInfo]:
        """Every published track: id, publisher, kind, source, mute."""
        return [TrackInfo(t.track_id, t.publisher, t.kind, t.source, t.muted)
                for t in self._calls.get_available_tracks(self._room)]

    def get_receivers(self, track_id: str) -> list[str]:
        """Who receives ``track_id``."""
        room = self._calls.get_room(self._room)
        room.track(track_id)
        return [p.id for p in room.participants.values() if track_id in p.subscriptions]


class Recorder:
    """Seed 003's ``Recorder``: start, stop, pause, resume and status per room, for real
    (one file per track and a manifest under the recording path)."""

    def __init__(self, calls: CallService) -> None:
        self._calls = calls

    async def start(self, room_id: str) -> RecordingInfo:
        """Start recording every track of the room."""
        return await self._calls.start_recording(room_id)

    async def stop(self, room_id: str) -> RecordingInfo:
        """Stop: files closed, manifest final."""
        return await self._calls.stop_recording(room_id)

    async def pause(self, room_id: str) -> RecordingInfo:
        """Pause (the manifest lists the gap)."""
        return await self._calls.pause_recording(room_id)

    async def resume(self, room_id: str) -> RecordingInfo:
        """Resume after a pause."""
        return await self._calls.resume_recording(room_id)

    async def get_status(self, room_id: str) -> RecordingInfo:
        """The recording as it is now."""
        return await self._calls.recording_status(room_id)


# makes the peer of a participant who just joined: (room, user) -> its peer connection
PeerFactory = Callable[[str, str], PeerConnection]


class CallRoom:
    """Seed 003's ``CallRoom`` (see the module doc); get one from the extension."""

    def __init__(self, calls: CallService, room_id: str, server_peer: Callable[[str, str],
                 SfuPeer], make_local: Callable[[str, str], LocalPeer],
                 signaling_timeout: float, clock: Clock | None = None,
                 quality: QualityMonitor | None = None) -> None:
        self._calls = calls
        self._id = room_id
        self._server_peer = server_peer
        self._make_local = make_local
        self._timeout = signaling_timeout
        self._clock = clock
        self._peers: dict[str, PeerConnection] = {}
        self._quality = quality

    @property
    def id(self) -> str:
        """The room's id."""
        return self._id

    @property
    def name(self) -> str:
        """The room's display name."""
        return self._calls.get_room(self._id).name

    @property
    def topology(self) -> str:
        """``mesh`` or ``sfu``."""
        return self._calls.get_room(self._id).topology.value

    @property
    def max_members(self) -> int:
        """Participants it holds at most."""
        return self._calls.get_room(self._id).max_members

    @property
    def router(self) -> SfuRouter:
        """The room's SFU router."""
        return SfuRouter(self._calls, self._id)

    async def join_call(self, user_id: str, *, audio_enabled: bool = True,
                        video_enabled: bool = True, display_name: str | None = None,
                        metadata: dict[str, Any] | None = None,
                        grants: Grants | None = None) -> PeerConnection:
        """Join ``user_id``; returns its peer connection: the server's peer with the
        participant's client in an SFU room (:class:`~.peer.ServerPeer`), this process's
        own peer in a mesh room (:class:`~.localpeer.LocalPeer`). Raises
        :class:`~rtchub.errors.RoomFull` and :class:`~rtchub.errors.PeerAlreadyExists`."""
        if user_id in self._peers:
            raise PeerAlreadyExists(f"{user_id!r} is already in room {self._id!r}")
        room = self._calls.get_room(self._id)
        holder: list[ServerPeer] = []

        def sink(event: object) -> None:
            if holder:
                holder[0].event(event)

        await self._calls.join(self._id, user_id, display_name=display_name,
                               metadata=metadata, audio_enabled=audio_enabled,
                               video_enabled=video_enabled, topology=room.topology,
                               grants=grants or Grants(user_id, self._id), sink=sink)
        peer: PeerConnection
        if room.topology is Topology.SFU:
            server = ServerPeer(self._calls, self._server_peer(self._id, user_id), self._id,
                                user_id, self._timeout, self._clock)
            holder.append(server)
            peer = server
        else:
            peer = self._make_local(self._id, user_id)
        self._peers[user_id] = peer
        return peer

    def get_peer(self, user_id: str) -> PeerConnection:
        """The peer of a participant joined from Python; :class:`PeerNotFound` if none."""
        peer = self._peers.get(user_id)
        if peer is None:
            raise PeerNotFound(f"no peer connection for {user_id!r} in room {self._id!r}")
        return peer

    def get_peers(self) -> list[PeerConnection]:
        """The peers of participants joined from Python."""
        return list(self._peers.values())

    def get_participants(self) -> list[Participant]:
        """Everyone in the room, in join order, however they joined."""
        return [Participant(p.id, p.display_name, p.audio, p.video, p.screen,
                            datetime.fromtimestamp(p.joined_at, UTC), dict(p.metadata),
                            self._latest(p.id))
                for p in self._calls.participants(self._id)]

    def _latest(self, user_id: str) -> ConnectionQuality | None:
        monitor = self._quality
        if monitor is None or (self._id, user_id) not in monitor.peers(self._id):
            return None
        return monitor.get_quality(user_id, self._id)

    async def leave(self, user_id: str) -> None:
        """``user_id`` leaves (:class:`~rtchub.errors.NotInRoom` if it is not in)."""
        peer = self._peers.pop(user_id, None)
        if peer is not None:
            await peer.close()  # leaves too
        else:
            await self._calls.leave(self._id, user_id)

    def mute_user(self, user_id: str) -> None:
        """Mute the participant's audio for everyone (held until :meth:`unmute_user`)."""
        self._calls.mute_user(self._id, user_id)

    def unmute_user(self, user_id: str) -> None:
        """Let the participant's audio through again."""
        self._calls.unmute_user(self._id, user_id)

    def disable_video(self, user_id: str) -> None:
        """Turn the participant's video off for everyone (held until :meth:`enable_video`)."""
        self._calls.disable_video(self._id, user_id)

    def enable_video(self, user_id: str) -> None:
        """Let the participant's video through again."""
        self._calls.enable_video(self._id, user_id)

    def start_screen_share(self, user_id: str, track: Track | str | None = None) -> None:
        """The participant shares its screen; in an SFU room ``track`` (the id of a video
        track it publishes) is labelled the screen."""
        if track is not None and self._calls.get_room(self._id).is_sfu:
            self._calls.label_track(self._id, user_id,
                                    track if isinstance(track, str) else track.id, "screen")
        self._calls.set_media_state(self._id, user_id, screen=True)

    def stop_screen_share(self, user_id: str) -> None:
        """The participant stops sharing its screen."""
        self._calls.set_media_state(self._id, user_id, screen=False)
