"""The call-room service: seed 003's rooms, participants, SFU router and recorder control.

One :class:`CallService` per node holds the call rooms whose participants are here (an
SFU room lives on one node: its media does). It decides (rules in :mod:`.rules`), tells
participants what changed (events in :mod:`.events`, through the courier to a connection,
or to the sink a Python participant gave) and drives the media plane through the
:class:`CallMedia` protocol (:mod:`.ports`); :mod:`.live` implements it on
``rtchub.media.sfu`` and ``rtchub.media.recording``, and calls back the
:class:`MediaEvents` methods this service implements. The service itself does no I/O.

Mesh rooms: the rooms feature relays their signaling; this service only lists their
participants and their state (seed 003's ``GetParticipants`` on a mesh room). Every SFU
operation on a mesh room raises :class:`~rtchub.errors.SFUNotEnabled`.

Subscriptions: a participant with ``auto_subscribe`` (the default) receives every track
published in the room, from its first negotiation on (the client offers first; the
server's own offers follow); ``subscribe_to_track`` / ``unsubscribe_from_track`` change
that one track at a time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rtchub.base.connection import Address
from rtchub.cluster.courier import Delivery
from rtchub.errors import (
    InvalidField,
    NotInRoom,
    PeerAlreadyExists,
    RoomNotFound,
    RtcHubError,
    TopologyMismatch,
    TrackNotFound,
    Unauthorized,
)
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
from rtchub.features.calls.ports import Authorizer, CallMedia, DevAuthorizer
from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.rules import (
    DEFAULT_MAX_MEMBERS,
    DEFAULT_QUALITY,
    RECORD_ACTIONS,
    CallRoom,
    Grants,
    Participant,
    RecordingInfo,
    Topology,
    TrackInfo,
    check_kind,
    check_quality,
    check_source,
    clean_display_name,
    clean_metadata,
    default_source,
    muted_state,
    parse_topology,
    quality_layer,
)

__all__ = ["CallService", "EventSink"]

log = logging.getLogger("rtchub.calls")

EventSink = Callable[[CallEvent], None]
MAX_CHAT = 4096


class CallService:
    """Call rooms on this node; see the module docstring.

    ``wall`` gives Unix time (``joined_at``, chat timestamps); ``authorizer`` decides
    joins of SFU rooms (default: :class:`DevAuthorizer`).
    """

    def __init__(self, media: CallMedia, courier: Delivery, *,
                 authorizer: Authorizer | None = None,
                 wall: Callable[[], float] = time.time,
                 max_members: int = DEFAULT_MAX_MEMBERS) -> None:
        self._media = media
        self._courier = courier
        self.authorizer: Authorizer = authorizer or DevAuthorizer()
        self._wall = wall
        self._max_members = max_members
        self._rooms: dict[str, CallRoom] = {}
        # where each participant is told things: a connection, or a Python sink
        self._addresses: dict[tuple[str, str], Address] = {}
        self._where: dict[Address, tuple[str, str]] = {}
        self._sinks: dict[tuple[str, str], EventSink] = {}
        self._negotiated: set[tuple[str, str]] = set()  # made its first offer
        media.attach(self)

    # -- rooms ---------------------------------------------------------------------------

    def create_room(self, room_id: str, *, name: str | None = None,
                    max_members: int | None = None,
                    topology: Topology | str = Topology.MESH) -> CallRoom:
        """Create a call room (seed 003's ``CreateCallRoom``); it stays until deleted.

        A room that exists already is returned as it is (and now kept when empty), unless
        its topology differs: :class:`TopologyMismatch`.
        """
        topo = parse_topology(topology)
        room = self._rooms.get(room_id)
        if room is not None:
            if room.topology is not topo:
                raise TopologyMismatch(f"room {room_id!r} exists with topology "
                                       f"{room.topology.value!r}")
            room.created_by_api = True
            return room
        room = CallRoom(room_id, topo, name or room_id,
                        max_members if max_members is not None else self._max_members,
                        created_by_api=True)
        self._rooms[room_id] = room
        return room

    def get_room(self, room_id: str) -> CallRoom:
        """The room; :class:`RoomNotFound` if this node holds no such room."""
        room = self._rooms.get(room_id)
        if room is None:
            raise RoomNotFound(f"call room {room_id[:80]!r} not found")
        return room

    def find_room(self, room_id: str) -> CallRoom | None:
        """The room, or None."""
        return self._rooms.get(room_id)

    def rooms(self) -> list[CallRoom]:
        """Every call room on this node."""
        return list(self._rooms.values())

    async def delete_room(self, room_id: str) -> None:
        """Remove every participant (their peers close), stop recording, forget the room."""
        room = self.get_room(room_id)
        for pid in list(room.participants):
            await self.leave(room_id, pid)
        self._rooms.pop(room_id, None)
        if room.is_sfu:
            await self._media.close_room(room_id)

    def topology_of(self, room_id: str) -> Topology | None:
        """The topology of a room this node holds (None: unknown here)."""
        room = self._rooms.get(room_id)
        return None if room is None else room.topology

    # -- joining -------------------------------------------------------------------------

    def authorize(self, room_id: str, topology: Topology, token: str | None,
                  requested: str | None) -> Grants:
        """The grants of a join. Mesh rooms stay open (seed 000): everyone may do all but
        record and admin. SFU rooms ask the authorizer (tokens)."""
        if topology is Topology.MESH:
            return Grants(requested, room_id)
        grants = self.authorizer.authorize(room_id, token, requested)
        if grants.room is not None and grants.room != room_id:
            raise Unauthorized(f"the token is for room {grants.room!r}, not {room_id!r}")
        return grants

    def admit(self, room_id: str, participant_id: str, topology: Topology | None) -> Topology:
        """Check a join before it happens: the topology agrees, the room has space.
        Returns the room's topology (``topology``, else the room's, else mesh)."""
        room = self._rooms.get(room_id)
        if room is None:
            return topology or Topology.MESH
        if topology is not None and topology is not room.topology:
            raise TopologyMismatch(f"room {room_id!r} is {room.topology.value}, not "
                                   f"{topology.value}")
        room.check_room_for(participant_id)
        return room.topology

    async def join(self, room_id: str, user_id: str, *, display_name: str | None = None,
                   metadata: dict[str, Any] | None = None, audio_enabled: bool = True,
                   video_enabled: bool = True, topology: Topology | str | None = None,
                   grants: Grants | None = None, auto_subscribe: bool = True,
                   address: Address | None = None, sink: EventSink | None = None
                   ) -> Participant:
        """Join ``user_id`` (seed 003's ``JoinCall``); returns the participant.

        The room is created with ``topology`` (default mesh) if it does not exist.
        Events for the participant go to ``address`` (a connection) or ``sink``. In an SFU
        room the participant gets its server peer at once; everyone else is told
        (``participants``). Raises :class:`TopologyMismatch`, :class:`RoomFull`,
        :class:`PeerAlreadyExists` (the id is in the room already) or
        :class:`InvalidField`.
        """
        topo = parse_topology(topology) if topology is not None else None
        topo = self.admit(room_id, user_id, topo)
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = CallRoom(room_id, topo, room_id, self._max_members)
        if user_id in room.participants:
            raise PeerAlreadyExists(f"{user_id!r} is already in room {room_id!r}")
        participant = Participant(
            user_id, clean_display_name(display_name, user_id), clean_metadata(metadata),
            bool(audio_enabled), bool(video_enabled), self._wall(),
            grants or Grants(user_id, room_id), auto_subscribe=bool(auto_subscribe))
        key = (room_id, user_id)
        if room.is_sfu:
            self._media.open_peer(room_id, user_id)
        room.participants[user_id] = participant
        if address is not None:
            self._addresses[key] = address
            self._where[address] = key
        if sink is not None:
            self._sinks[key] = sink
        if room.is_sfu:
            self._broadcast(room, ParticipantsChanged(room_id, self._states(room)),
                            but=user_id)
        log.info("call joined", extra={"room": room_id, "member": user_id,
                                       "topology": room.topology.value})
        return participant

    async def leave(self, room_id: str, user_id: str) -> None:
        """The participant leaves (seed 003's ``Leave``): its peer closes, its tracks end,
        everyone is told. An empty room not created through the API is forgotten.
        Raises :class:`NotInRoom`."""
        room = self._rooms.get(room_id)
        if room is None or user_id not in room.participants:
            raise NotInRoom(f"{user_id!r} is not in call room {room_id!r}")
        del room.participants[user_id]
        key = (room_id, user_id)
        address = self._addresses.pop(key, None)
        if address is not None and self._where.get(address) == key:
            del self._where[address]
        self._sinks.pop(key, None)
        self._negotiated.discard(key)
        for other in room.participants.values():
            for track in room.tracks_of(user_id):
                other.subscriptions.discard(track.track_id)
                other.qualities.pop(track.track_id, None)
        if room.is_sfu:
            await self._media.close_peer(room_id, user_id)
            gone = room.tracks_of(user_id)   # close_peer normally ended them already
            for track in gone:
                del room.tracks[track.track_id]
            if gone:
                self._broadcast(room, TracksChanged(room_id, tuple(room.tracks.values())))
            if room.speaker == user_id:
                self.active_speaker(room_id, None)
            self._broadcast(room, ParticipantsChanged(room_id, self._states(room)))
        if not room.participants and not room.created_by_api:
            self._rooms.pop(room_id, None)
            if room.is_sfu:
                await self._media.close_room(room_id)
        log.info("call left", extra={"room": room_id, "member": user_id})

    def locate(self, address: Address) -> tuple[str, str] | None:
        """(room, participant) of the connection at ``address``, if it is in a call room."""
        return self._where.get(address)

    def address_of(self, room_id: str, user_id: str) -> Address | None:
        """Where a participant's connection is (None: a Python participant)."""
        return self._addresses.get((room_id, user_id))

    # -- participants --------------------------------------------------------------------

    def participant(self, room_id: str, user_id: str) -> Participant:
        """One participant; :class:`NotInRoom` if absent."""
        room = self.get_room(room_id)
        found = room.participants.get(user_id)
        if found is None:
            raise NotInRoom(f"{user_id!r} is not in call room {room_id!r}")
        return found

    def participants(self, room_id: str) -> list[Participant]:
        """Seed 003's ``GetParticipants``: everyone in join order (mesh rooms too)."""
        return list(self.get_room(room_id).participants.values())

    def mute_user(self, room_id: str, user_id: str, kind: str = "audio") -> None:
        """Mute a participant's audio (or video) for everyone (seed 003's ``MuteUser``)."""
        self._set_media(room_id, user_id, {check_kind(kind): False}, forced=True)

    def unmute_user(self, room_id: str, user_id: str, kind: str = "audio") -> None:
        """Undo :meth:`mute_user` (seed 003's ``UnmuteUser``)."""
        self._set_media(room_id, user_id, {check_kind(kind): True}, forced=True)

    def disable_video(self, room_id: str, user_id: str) -> None:
        """Turn a participant's camera off for everyone (seed 003's ``DisableVideo``)."""
        self._set_media(room_id, user_id, {"video": False}, forced=True)

    def enable_video(self, room_id: str, user_id: str) -> None:
        """Undo :meth:`disable_video` (seed 003's ``EnableVideo``)."""
        self._set_media(room_id, user_id, {"video": True}, forced=True)

    def moderate(self, room_id: str, actor: str, target: str, kind: str, mute: bool) -> None:
        """``actor`` mutes or unmutes ``target``'s audio or video: needs the admin grant
        (:class:`Unauthorized` otherwise)."""
        if not self.participant(room_id, actor).grants.admin:
            raise Unauthorized(f"{actor!r} may not mute others in room {room_id!r} "
                               f"(needs the admin grant)")
        self.participant(room_id, target)
        if mute:
            self.mute_user(room_id, target, kind)
        else:
            self.unmute_user(room_id, target, kind)

    def set_media_state(self, room_id: str, user_id: str, *, audio: bool | None = None,
                        video: bool | None = None, screen: bool | None = None) -> None:
        """A participant's own mute / camera / screen-share state (the client says it)."""
        changes = {k: v for k, v in (("audio", audio), ("video", video), ("screen", screen))
                   if v is not None}
        for name, value in changes.items():
            if not isinstance(value, bool):
                raise InvalidField(f"'{name}' must be true or false")
        self._set_media(room_id, user_id, changes, forced=False)

    def _set_media(self, room_id: str, user_id: str, changes: dict[str, bool], *,
                   forced: bool) -> None:
        """Apply audio / video / screen changes. ``forced`` (an admin, or the API) holds a
        kind muted: the SFU forwards none of it, and the participant's own unmute does not
        lift the hold (only :meth:`unmute_user` / :meth:`enable_video` do)."""
        room = self.get_room(room_id)
        participant = self.participant(room_id, user_id)
        for name, value in changes.items():
            if forced:
                if value:
                    participant.held.discard(name)
                else:
                    participant.held.add(name)
            elif value and name in participant.held:
                continue
            setattr(participant, name, value)
        changed_tracks = False
        for track in room.tracks_of(user_id):
            muted = muted_state(participant, track)
            if muted != track.muted:
                room.tracks[track.track_id] = replace(track, muted=muted)
                changed_tracks = True
            if forced and room.is_sfu:
                self._media.set_track_muted(room_id, track.track_id,
                                            track.kind in participant.held)
        if room.is_sfu:
            self._broadcast(room, ParticipantsChanged(room_id, self._states(room)))
            if changed_tracks:
                self._broadcast(room, TracksChanged(room_id, tuple(room.tracks.values())))

    # -- SFU: negotiation ----------------------------------------------------------------

    async def accept_offer(self, room_id: str, user_id: str, sdp: str) -> str | None:
        """The client's offer (it publishes or renegotiates): the server's answer, or
        None on glare (``sfu_ignored``). The first one also starts the participant's
        automatic subscriptions."""
        room = self._sfu(room_id, "an SFU offer")
        self.participant(room_id, user_id)
        answer = await self._media.accept_offer(room_id, user_id, sdp)
        key = (room_id, user_id)
        if answer is not None and key not in self._negotiated and key[1] in room.participants:
            self._negotiated.add(key)
            participant = room.participants[user_id]
            # subscriptions noted before this first negotiation (tracks published, or
            # subscribe requests, while the participant had no connection) start now
            for track_id in list(participant.subscriptions):
                if track_id in room.tracks:
                    self._media.subscribe(room_id, user_id, track_id)
            if participant.auto_subscribe and participant.grants.subscribe:
                for track in list(room.tracks.values()):
                    if track.publisher != user_id:
                        self._subscribe(room, participant, track)
        return answer

    async def accept_answer(self, room_id: str, user_id: str, sdp: str) -> None:
        """The client's answer to the server's offer."""
        self._sfu(room_id, "an SFU answer")
        self.participant(room_id, user_id)
        await self._media.accept_answer(room_id, user_id, sdp)

    async def add_ice_candidate(self, room_id: str, user_id: str, candidate: str | None,
                                sdp_mid: str | None = None,
                                sdp_mline_index: int | None = None) -> None:
        """A trickled candidate of the client (None: end of candidates)."""
        self._sfu(room_id, "an SFU candidate")
        self.participant(room_id, user_id)
        await self._media.add_candidate(room_id, user_id, candidate, sdp_mid, sdp_mline_index)

    def label_track(self, room_id: str, user_id: str, track_id: str, source: str) -> None:
        """The client says what a track it sends (or is about to send) is: microphone,
        camera or screen. Applies to a published track at once, else when it appears."""
        room = self._sfu(room_id, "publish")
        participant = self.participant(room_id, user_id)
        if not participant.grants.publish:
            raise Unauthorized(f"{user_id!r} may not publish in room {room_id!r}")
        source = check_source(source)
        if not isinstance(track_id, str) or not track_id or len(track_id) > 256:
            raise InvalidField("'track_id' must be a non-empty string")
        participant.labels[track_id] = source
        if len(participant.labels) > 64:  # bounded: oldest labels go first
            participant.labels.pop(next(iter(participant.labels)))
        track = room.tracks.get(track_id)
        if track is not None and track.publisher == user_id and track.source != source:
            track = replace(track, source=source)
            room.tracks[track_id] = replace(track, muted=muted_state(participant, track))
            self._broadcast(room, TracksChanged(room_id, tuple(room.tracks.values())))

    # -- SFU: the router -----------------------------------------------------------------

    def subscribe_to_track(self, room_id: str, subscriber: str, track_id: str,
                           publisher: str | None = None) -> None:
        """Receive ``track_id`` (seed 003's ``SubscribeToTrack``); ``publisher``, when
        given, must be the track's. Raises :class:`TrackNotFound`, :class:`NotInRoom`,
        :class:`SFUNotEnabled`, :class:`Unauthorized` (no subscribe grant)."""
        room = self._sfu(room_id, "subscribe")
        participant = self.participant(room_id, subscriber)
        track = room.track(track_id)
        if publisher is not None and track.publisher != publisher:
            raise _not_found(room, track_id, publisher)
        if not participant.grants.subscribe:
            raise Unauthorized(f"{subscriber!r} may not subscribe in room {room_id!r}")
        if track.publisher == subscriber:
            raise InvalidField("a participant does not subscribe to its own track")
        self._subscribe(room, participant, track)

    def unsubscribe_from_track(self, room_id: str, subscriber: str, track_id: str,
                               publisher: str | None = None) -> None:
        """Stop receiving ``track_id`` (seed 003's ``UnsubscribeFromTrack``)."""
        room = self._sfu(room_id, "unsubscribe")
        participant = self.participant(room_id, subscriber)
        track = room.track(track_id)
        if publisher is not None and track.publisher != publisher:
            raise _not_found(room, track_id, publisher)
        if track_id in participant.subscriptions:
            participant.subscriptions.discard(track_id)
            self._media.unsubscribe(room_id, subscriber, track_id)

    def set_quality(self, room_id: str, track_id: str, receiver_id: str,
                    quality: str) -> None:
        """The layer ``receiver_id`` wants of ``track_id``: low, medium or high (seed 003's
        ``SetQuality``; anything else raises :class:`InvalidQuality`), simulcast layer
        0, 1 or 2 (q, h, f): the most it is forwarded, which adaptive quality may lower
        but never exceed. New subscribers get ``low`` until they ask."""
        quality = check_quality(quality)
        room = self._sfu(room_id, "set_quality")
        participant = self.participant(room_id, receiver_id)
        room.track(track_id)
        participant.qualities[track_id] = quality
        self._media.set_quality(room_id, receiver_id, track_id, quality_layer(quality))

    def get_quality(self, room_id: str, track_id: str, receiver_id: str) -> str:
        """The quality asked for (``low`` until asked, as forge starts new subscribers)."""
        return self.participant(room_id, receiver_id).qualities.get(track_id,
                                                                    DEFAULT_QUALITY)

    def get_available_tracks(self, room_id: str) -> list[TrackInfo]:
        """Seed 003's ``GetAvailableTracks``: every published track (id, publisher, kind,
        source, mute)."""
        return list(self._sfu(room_id, "get_available_tracks").tracks.values())

    def subscriptions(self, room_id: str, user_id: str) -> set[str]:
        """Track ids the participant receives (or will, after the next negotiation)."""
        return set(self.participant(room_id, user_id).subscriptions)

    def _subscribe(self, room: CallRoom, participant: Participant, track: TrackInfo) -> None:
        if track.track_id in participant.subscriptions:
            return
        participant.subscriptions.add(track.track_id)
        if (room.id, participant.id) in self._negotiated:
            self._media.subscribe(room.id, participant.id, track.track_id)

    # -- chat ----------------------------------------------------------------------------

    def send_chat(self, room_id: str, user_id: str, text: str) -> Chat:
        """Relay a chat line to everyone else in the room (socket and data channel)."""
        room = self.get_room(room_id)
        self.participant(room_id, user_id)
        if not isinstance(text, str) or not text or len(text) > MAX_CHAT:
            raise InvalidField(f"'text' must be a non-empty string of at most {MAX_CHAT} "
                               f"characters")
        chat = Chat(room_id, user_id, text, self._wall())
        line = json.dumps({"from": user_id, "text": text, "ts": chat.ts})
        for pid in list(room.participants):
            # once to each: on its "chat" data channel when it has one open, else the socket
            if pid != user_id and not (room.is_sfu and self._media.send_chat(room_id, pid,
                                                                               line)):
                self._tell(room_id, pid, chat)
        return chat

    # -- recording -----------------------------------------------------------------------

    async def recording(self, room_id: str, action: str, user_id: str | None = None
                        ) -> RecordingInfo:
        """Start, stop, pause, resume the room's recording or read its ``status``;
        ``user_id`` (a participant acting over the wire) needs the record grant.
        Everyone is told of a change (``recording``)."""
        room = self._sfu(room_id, "recording")
        if action not in RECORD_ACTIONS:
            raise InvalidField(f"'action' must be one of {', '.join(RECORD_ACTIONS)}")
        if user_id is not None and not self.participant(room_id, user_id).grants.record:
            raise Unauthorized(f"{user_id!r} may not record room {room_id!r}")
        info = await self._media.record(room_id, action)
        if action != "status" or info != room.recording:
            self.recording_changed(room_id, info)
        return info

    async def start_recording(self, room_id: str) -> RecordingInfo:
        """Start recording every track of the room (one file per track, a manifest)."""
        return await self.recording(room_id, "start")

    async def stop_recording(self, room_id: str) -> RecordingInfo:
        """Stop: every file closed, the manifest final."""
        return await self.recording(room_id, "stop")

    async def pause_recording(self, room_id: str) -> RecordingInfo:
        """Pause: the files get a gap the manifest lists."""
        return await self.recording(room_id, "pause")

    async def resume_recording(self, room_id: str) -> RecordingInfo:
        """Resume after a pause."""
        return await self.recording(room_id, "resume")

    async def recording_status(self, room_id: str) -> RecordingInfo:
        """The recording as it is now."""
        return await self.recording(room_id, "status")

    # -- what the media plane tells us (MediaEvents) -------------------------------------

    async def server_offer(self, room: str, participant: str, sdp: str) -> None:
        """Deliver the server peer's offer to its client."""
        self._tell(room, participant, ServerOffer(room, participant, sdp))

    def track_published(self, room: str, participant: str, track_id: str, kind: str,
                        stream_id: str) -> None:
        """Announce a new track and subscribe everyone who subscribes automatically."""
        call = self._rooms.get(room)
        publisher = call.participants.get(participant) if call is not None else None
        if call is None or publisher is None:
            return
        if track_id in call.tracks:
            log.warning("track id %r published twice in room %r: ignored", track_id, room)
            return
        source = publisher.labels.get(track_id, default_source(kind))
        track = TrackInfo(track_id, participant, kind, source, stream_id)
        track = replace(track, muted=muted_state(publisher, track))
        call.tracks[track_id] = track
        self._broadcast(call, TracksChanged(room, tuple(call.tracks.values())))
        for other in list(call.participants.values()):
            if other.id != participant and other.auto_subscribe and other.grants.subscribe:
                self._subscribe(call, other, track)

    def track_ended(self, room: str, participant: str, track_id: str) -> None:
        """Forget an unpublished track and tell everyone."""
        call = self._rooms.get(room)
        if call is None:
            return
        track = call.tracks.get(track_id)
        if track is None or track.publisher != participant:
            return
        del call.tracks[track_id]
        for other in call.participants.values():
            other.subscriptions.discard(track_id)
            other.qualities.pop(track_id, None)
        self._broadcast(call, TracksChanged(room, tuple(call.tracks.values())))

    def active_speaker(self, room: str, participant: str | None) -> None:
        """Tell everyone who speaks now."""
        call = self._rooms.get(room)
        if call is None or call.speaker == participant:
            return
        call.speaker = participant
        self._broadcast(call, ActiveSpeaker(room, participant))

    def chat_received(self, room: str, participant: str, text: str) -> None:
        """Relay a data-channel chat line like a socket one (refusals are dropped: a data
        channel has nobody to send an error to)."""
        try:
            self.send_chat(room, participant, text)
        except RtcHubError as err:
            log.info("chat from %r dropped: %s", participant, err)

    def peer_failed(self, room: str, participant: str, error: RtcHubError) -> None:
        """Tell the participant its peer connection ended (it may offer again after
        leaving and joining)."""
        self._tell(room, participant, PeerFailed(room, participant, error.code, str(error)))

    def recording_changed(self, room: str, info: RecordingInfo) -> None:
        """Keep the room's recording state and tell everyone."""
        call = self._rooms.get(room)
        if call is None or info == call.recording:
            return
        call.recording = info
        self._broadcast(call, RecordingChanged(room, info))

    def quality_changed(self, room: str, qualities: tuple[ConnectionQuality, ...]) -> None:
        """Tell everyone in the room everyone's quality (``quality``)."""
        call = self._rooms.get(room)
        if call is not None:
            self._broadcast(call, QualityChanged(room, qualities))

    # -- helpers -------------------------------------------------------------------------

    def _sfu(self, room_id: str, what: str) -> CallRoom:
        room = self.get_room(room_id)
        room.require_sfu(what)
        return room

    @staticmethod
    def _states(room: CallRoom) -> tuple[Any, ...]:
        return tuple(p.state() for p in room.participants.values())

    def _tell(self, room: str, participant: str, event: CallEvent) -> None:
        key = (room, participant)
        address = self._addresses.get(key)
        if address is not None:
            self._courier.deliver(address, event)
        sink = self._sinks.get(key)
        if sink is not None:
            try:
                sink(event)
            except Exception:
                log.exception("a call event sink failed")

    def _broadcast(self, room: CallRoom, event: CallEvent, but: str | None = None) -> None:
        for pid in list(room.participants):
            if pid != but:
                self._tell(room.id, pid, event)


def _not_found(room: CallRoom, track_id: str, publisher: str) -> RtcHubError:
    return TrackNotFound(f"{publisher!r} publishes no track {track_id[:80]!r} in room "
                         f"{room.id!r}")
