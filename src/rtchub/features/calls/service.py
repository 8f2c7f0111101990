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

A plain seed-000 mesh join only takes a seat; records come when first asked for (:mod:`.seats`).

Subscriptions: a participant with ``auto_subscribe`` (the default) receives every track
published in the room, from its first negotiation on (the client offers first; the
server's own offers follow); ``subscribe_to_track`` / ``unsubscribe_from_track`` change
that one track at a time.

This module keeps the rooms' lifecycle (create, join, leave, delete), participants' state,
chat and the media plane's callbacks; three parts of the service live beside it and are
mixed into :class:`CallService`: :mod:`.seats` (plain mesh members without records yet),
:mod:`.routing` (negotiation, subscriptions, quality) and :mod:`.recording` (recorder
control).
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
    ConnectionFailed,
    InvalidField,
    NotInRoom,
    PeerAlreadyExists,
    RoomNotFound,
    RtcHubError,
    SFUNotEnabled,
    TopologyMismatch,
    Unauthorized,
)
from rtchub.features.calls.events import (
    ActiveSpeaker,
    CallEvent,
    Chat,
    ParticipantsChanged,
    PeerFailed,
    QualityChanged,
    ServerOffer,
    TracksChanged,
)
from rtchub.features.calls.ports import Authorizer, CallMedia, DevAuthorizer
from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.recording import CallRecording
from rtchub.features.calls.routing import SfuRouting
from rtchub.features.calls.rules import (
    DEFAULT_MAX_MEMBERS,
    CallRoom,
    Grants,
    Participant,
    Topology,
    TrackInfo,
    check_kind,
    clean_display_name,
    clean_metadata,
    default_source,
    muted_state,
    parse_topology,
)
from rtchub.features.calls.seats import MeshSeats, Seat

__all__ = ["CallService", "EventSink"]

log = logging.getLogger("rtchub.calls")

EventSink = Callable[[CallEvent], None]
MAX_CHAT = 4096


class CallService(MeshSeats, SfuRouting, CallRecording):
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
        # plain mesh members without records yet (see the module docstring): the seats of
        # each room in join order, and each seat by its connection
        self._seats: dict[str, list[Seat]] = {}
        self._seated: dict[Address, Seat] = {}
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
        room = self._room(room_id)
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
        room = self._room(room_id)
        if room is None:
            raise RoomNotFound(f"call room {room_id[:80]!r} not found")
        return room

    def find_room(self, room_id: str) -> CallRoom | None:
        """The room, or None."""
        return self._room(room_id)

    def rooms(self) -> list[CallRoom]:
        """Every call room on this node."""
        for room_id in list(self._seats):
            self._materialize(room_id)
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
        if room is None:
            return Topology.MESH if room_id in self._seats else None
        return room.topology

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
        if self._admit_seated(room_id, participant_id, topology):
            return Topology.MESH
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
        room = self._room(room_id)
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
        seats = self._seats.get(room_id)
        if seats is not None:
            self._unseat(room_id, seats, user_id)
            return
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
        seat = self._seated.get(address)
        if seat is not None:
            return seat.room, seat.member
        return self._where.get(address)

    def address_of(self, room_id: str, user_id: str) -> Address | None:
        """Where a participant's connection is (None: a Python participant)."""
        for seat in self._seats.get(room_id, ()):
            if seat.member == user_id:
                return seat.address
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
                try:
                    self._subscribe(call, other, track)
                except ConnectionFailed as err:
                    # its peer failed and it joins again (subscribing then): that is no
                    # error of the publisher's, nor a reason to skip those after it
                    log.info("%r not subscribed to %r: %s", other.id, track_id, err)

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

    def quality_changed(self, room: str, qualities: tuple[ConnectionQuality, ...]) -> None:
        """Tell everyone in the room everyone's quality (``quality``)."""
        call = self._rooms.get(room)
        if call is not None:
            self._broadcast(call, QualityChanged(room, qualities))

    # -- helpers -------------------------------------------------------------------------

    def _sfu(self, room_id: str, what: str) -> CallRoom:
        if room_id in self._seats:   # seated rooms are mesh: refused without records
            raise SFUNotEnabled(f"{what} needs an SFU room; room {room_id!r} is mesh")
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

