"""Call rooms on one connection of the rooms dialect, and the rooms join's call seam.

:class:`CallsDialect` owns the call-room frame types (:data:`.wire.TYPES`) on ``/ws`` and
``/ws/rooms`` beside the rooms dialect; a connection's frames go through one serial
executor, so a call frame sent right after ``join`` is applied after the join.

:class:`CallJoins` is what the rooms dialect's ``join`` asks (the composition root hands
it over; features never import each other): before the join, the room's topology, the
join token's grants and identity, and for an SFU room its node (an SFU room lives on one
node); after it, the participant and the call-room fields of ``joined``; when the
connection leaves, the participant leaves too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from rtchub.base.connection import Address, Connection, ErrorReply
from rtchub.errors import InvalidField, NotInRoom, RoomElsewhere
from rtchub.features.calls import wire
from rtchub.features.calls.events import EVENTS, CallEvent, RecordingChanged
from rtchub.features.calls.rules import Grants, Topology, parse_topology
from rtchub.features.calls.service import CallService

__all__ = ["CallJoins", "CallsDialect", "CallsHandler", "Claim", "Ticket"]

log = logging.getLogger("rtchub.calls")

# Placement.claim (rtchub.cluster.placement) and release, or None on a single node
Claim = Callable[[str], Awaitable[tuple[str, str]]]   # room -> (owner node, its URL)
Release = Callable[[str], Awaitable[bool]]   # room -> it was placed here
Owner = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Ticket:
    """A join admitted by :meth:`CallJoins.admit`, handed back to :meth:`CallJoins.enter`."""

    topology: str | None
    member: str | None
    grants: Grants | None
    display_name: str | None
    metadata: Mapping[str, Any] | None
    auto_subscribe: bool
    call_aware: bool  # the join named call-room fields: joined gets participants


def _fields(fields: Mapping[str, Any]) -> tuple[str | None, str | None, Mapping[str, Any] | None,
                                                bool]:
    token = fields.get("access_token")
    if token is not None and (not isinstance(token, str) or len(token) > 8192):
        raise InvalidField("'access_token' must be a string (a join token)")
    name = fields.get("display_name")
    if name is not None and not isinstance(name, str):
        raise InvalidField("'display_name' must be a string")
    metadata = fields.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidField("'metadata' must be a JSON object")
    auto = fields.get("auto_subscribe", True)
    if not isinstance(auto, bool):
        raise InvalidField("'auto_subscribe' must be true or false")
    return token, name, metadata, auto


class CallJoins:
    """The call rooms' part of a rooms ``join`` (see the module doc)."""

    def __init__(self, calls: CallService, node: str, claim: Claim | None = None,
                 release: Release | None = None, owner: Owner | None = None) -> None:
        self.calls = calls
        self.node = node
        self._claim = claim
        self._release = release
        self._owner = owner

    async def admit(self, room: str, requested: str | None, topology: str | None,
                    fields: Mapping[str, Any]) -> Ticket:
        """Before the join: the topology, the grants (SFU rooms), the node. Raises
        TopologyMismatch, Unauthorized, RoomFull, RoomElsewhere."""
        token, name, metadata, auto = _fields(fields)
        topo = parse_topology(topology) if topology is not None else \
            self.calls.topology_of(room)
        if topo is None and self._owner is not None and await self._owner(room) is not None:
            # not here, but placed on a node: an SFU room (a join that names no topology
            # takes the room's own, so it is sent to that node like an SFU join)
            topo = Topology.SFU
        grants: Grants | None = None
        member = requested
        if topo is Topology.SFU:
            grants = self.calls.authorize(room, topo, token, requested)
            member = grants.identity or requested
            await self.place(room)
        if topo is not None:
            self.calls.admit(room, member or "", topo)
        return Ticket(None if topo is None else topo.value, member, grants, name, metadata,
                      auto, call_aware=bool(fields) or topology is not None)

    async def place(self, room: str) -> None:
        """An SFU room's media lives on one node: place ``room`` on this node unless it is
        placed elsewhere already. Raises RoomElsewhere naming the owner and its URL."""
        if self._claim is None:
            return
        owner, url = await self._claim(room)
        if owner != self.node:
            where = f"{url} (node {owner!r})" if url else f"node {owner!r}"
            raise RoomElsewhere(f"SFU room {room!r} lives on {where}: its "
                                f"participants connect there", owner, url)

    async def vacated(self, room: str) -> None:
        """A participant left ``room``: once it is gone, another node may place it."""
        if not self.calls.holds(room) and self._release is not None \
                and await self._release(room):
            log.info("call room unplaced", extra={"room": room})

    async def enter(self, ticket: Ticket, room: str, member: str, address: Address,
                    topology: str) -> dict[str, Any]:
        """After the rooms join: the participant joins the call room; returns the fields
        ``joined`` gains."""
        topo = parse_topology(topology)
        grants = ticket.grants
        if topo is Topology.SFU and grants is None:  # the room turned out to be SFU
            grants = self.calls.authorize(room, topo, None, member)
        if grants is not None and grants.identity not in (None, member):
            raise InvalidField(f"the token's identity is {grants.identity!r}")
        if self.calls.has_participant(room, member):
            # a resume, or a rejoin before the old connection was noticed gone
            await self.calls.leave(room, member)
        if topo is Topology.MESH and not ticket.call_aware:
            # seed 000's own join: a seat, records made when someone asks (calls.seats)
            await self.calls.seat(room, member, address)
            return {}
        await self.calls.join(room, member, display_name=ticket.display_name,
                              metadata=dict(ticket.metadata or {}), topology=topo,
                              grants=grants or Grants(member, room),
                              auto_subscribe=ticket.auto_subscribe, address=address)
        call = self.calls.get_room(room)
        if not call.is_sfu:
            return {"participants": call.participants_wire()} if ticket.call_aware else {}
        return {"participants": call.participants_wire(), "tracks": call.tracks_wire(),
                "grants": call.participants[member].grants.to_wire(),
                "recording": call.recording.to_wire(), "active_speaker": call.speaker}

    def leave(self, address: Address) -> Awaitable[None] | None:
        """The connection at ``address`` left its room (or closed)."""
        where = self.calls.locate(address)
        if where is None:
            return None
        return self._leave(*where)

    async def _leave(self, room: str, member: str) -> None:
        try:
            await self.calls.leave(room, member)
        except NotInRoom:
            return
        await self.vacated(room)


class CallsDialect:
    """The call-room frames, spoken on ``/ws`` and ``/ws/rooms`` beside rooms."""

    types: frozenset[str] = wire.TYPES
    events: tuple[type, ...] = EVENTS

    def __init__(self, calls: CallService, max_sdp: int) -> None:
        self.calls = calls
        self.max_sdp = max_sdp

    def open(self, conn: Connection, params: object, reply_error: ErrorReply
             ) -> CallsHandler:
        """State for one connection."""
        return CallsHandler(self, conn)


class CallsHandler:
    """One connection's call-room requests; its participant is found by address."""

    __slots__ = ("_calls", "_conn", "_max_sdp")

    def __init__(self, dialect: CallsDialect, conn: Connection) -> None:
        self._calls = dialect.calls
        self._max_sdp = dialect.max_sdp
        self._conn = conn

    def start(self) -> None:
        """Nothing until the connection joins a call room."""

    def handle(self, obj: dict[str, Any], received_ns: int) -> Awaitable[None] | None:
        """Apply one call-room frame; negotiation and recording return an awaitable."""
        msg = wire.decode(obj, self._max_sdp)
        where = self._calls.locate(self._conn.address)
        if where is None:
            raise NotInRoom("join a call room first")
        room, me = where
        calls = self._calls
        match msg:
            case wire.Description(kind="offer", sdp=sdp):
                return self._offer(room, me, sdp)
            case wire.Description(sdp=sdp):
                return calls.accept_answer(room, me, sdp)
            case wire.Candidate(candidate=line, sdp_mid=mid, sdp_mline_index=index):
                return calls.add_ice_candidate(room, me, line, mid, index)
            case wire.Publish(track_id=track_id, source=source):
                calls.label_track(room, me, track_id, source)
            case wire.Subscribe(track_id=track_id, on=True):
                calls.subscribe_to_track(room, me, track_id)
            case wire.Subscribe(track_id=track_id):
                calls.unsubscribe_from_track(room, me, track_id)
            case wire.Quality(track_id=track_id, quality=quality):
                calls.set_quality(room, track_id, me,
                                  quality if isinstance(quality, str) else repr(quality))
            case wire.MediaState(audio=audio, video=video, screen=screen):
                calls.set_media_state(room, me, audio=audio, video=video, screen=screen)
            case wire.Moderate(participant=target, kind=kind, mute=mute):
                calls.moderate(room, me, target, kind, mute)
            case wire.Record(action=action):
                return self._record(room, me, action)
            case wire.ChatLine(text=text):
                calls.send_chat(room, me, text)
            case _:
                assert_never(msg)
        return None

    async def _offer(self, room: str, me: str, sdp: str) -> None:
        answer = await self._calls.accept_offer(room, me, sdp)
        self._conn.send(wire.SFU_IGNORED if answer is None else wire.encode_answer(answer))

    async def _record(self, room: str, me: str, action: str) -> None:
        info = await self._calls.recording(room, action, user_id=me)
        if action == "status":
            self._conn.send(wire.encode_recording(room, RecordingChanged(room, info)))

    def deliver(self, event: CallEvent) -> None:
        """Render a call event for this client."""
        self._conn.send(wire.encode_event(event))

    def close(self) -> None:
        """Nothing: the rooms dialect's leave takes the participant out (CallJoins)."""
