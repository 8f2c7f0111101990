"""The rooms service: join, leave and relay for mesh signaling (seed 000).

State changes go through the state store atomically (rules in
:mod:`rtchub.features.rooms.rules`); relays are decided synchronously against a local
view of each room, kept current by every change this node makes and, in a
cluster, by :meth:`Rooms.apply_view` for changes other nodes make.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtchub.base.connection import Address
from rtchub.base.ids import IdFactory, random_id, random_token, validate_id
from rtchub.cluster.courier import Delivery
from rtchub.cluster.store import StateStore
from rtchub.config import Limits
from rtchub.errors import InvalidField, NotInRoom, PeerNotFound
from rtchub.features.rooms.events import (
    Joined,
    Probe,
    ProbeAnswer,
    Relayed,
    Replaced,
    RoomMembers,
)
from rtchub.features.rooms.rules import (
    ROOM_COUNT_KEY,
    JoinDecision,
    MemberRecord,
    RoomRecord,
    decide_join,
    decide_leave,
    hash_token,
    room_count_of,
    room_key,
)

__all__ = ["Membership", "Rooms"]

MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Membership:
    """A connection's place in a room, as the session keeps it."""

    room: str
    member: str
    address: Address


class Rooms:
    """Rooms, members and signaling relay. No I/O: store and courier are injected."""

    def __init__(self, store: StateStore, courier: Delivery, limits: Limits, *,
                 id_factory: IdFactory = random_id, token_factory: IdFactory = random_token
                 ) -> None:
        self._store = store
        self._courier = courier
        self._limits = limits
        self._new_id = id_factory
        self._new_token = token_factory
        self._views: dict[str, dict[str, MemberRecord]] = {}

    @property
    def limits(self) -> Limits:
        """The limits this service enforces."""
        return self._limits

    # -- state changes -------------------------------------------------------------------

    async def join(self, room_id: object, member_id: object, address: Address,
                   token: object = None, take_over: Address | None = None) -> Membership:
        """Join ``room_id`` as ``member_id`` (a fresh random ID when None).

        Delivers ``Joined`` to the joiner and ``RoomMembers`` to everyone in the
        room; a resumed identity's old connection gets ``Replaced``. ``take_over`` is a
        holder of the ID that did not answer a probe: the newcomer takes its place.
        """
        limit = self._limits.max_id_length
        room = validate_id("room", room_id, limit)
        member = validate_id("client", member_id, limit) if member_id is not None \
            else self._new_id()
        if token is not None and (not isinstance(token, str) or not token
                                  or len(token) > MAX_TOKEN_LENGTH):
            raise InvalidField(f"token must be a non-empty string of at most "
                               f"{MAX_TOKEN_LENGTH} characters")
        issued = token if token is not None else self._new_token()
        record = MemberRecord(member, address, hash_token(issued))
        limits = self._limits

        def mutate(values: Mapping[str, object | None]
                   ) -> tuple[Mapping[str, object | None], JoinDecision]:
            current = values.get(room_key(room))
            count = room_count_of(values)
            decision = decide_join(current if isinstance(current, RoomRecord) else None,
                                   count, room, record, token if isinstance(token, str)
                                   else None, limits, take_over)
            updates: dict[str, object | None] = {room_key(room): decision.room}
            if decision.created:
                updates[ROOM_COUNT_KEY] = count + 1
            return updates, decision

        decision = await self._store.transact((room_key(room), ROOM_COUNT_KEY), mutate)
        self.apply_view(room, decision.room)
        if decision.replaced is not None:
            reason = ("client ID taken over: this connection did not answer a ping"
                      if take_over is not None else "session resumed by another connection")
            self._courier.deliver(decision.replaced.address, Replaced(room, member, reason))
        self._courier.deliver(address, Joined(room, member, decision.room.member_ids, issued))
        self._broadcast_members(decision.room)
        return Membership(room, member, address)

    async def leave(self, membership: Membership) -> None:
        """Leave the room; the last member out deletes it. Idempotent."""
        room_id, member_id, address = membership.room, membership.member, membership.address

        def mutate(values: Mapping[str, object | None]
                   ) -> tuple[Mapping[str, object | None], RoomRecord | None]:
            current = values.get(room_key(room_id))
            before = current if isinstance(current, RoomRecord) else None
            after = decide_leave(before, member_id, address)
            if after is before:
                return {}, before
            if after is None or not after.members:
                return {room_key(room_id): None,
                        ROOM_COUNT_KEY: max(room_count_of(values) - 1, 0)}, None
            return {room_key(room_id): after}, after

        remaining = await self._store.transact((room_key(room_id), ROOM_COUNT_KEY), mutate)
        self.apply_view(room_id, remaining)
        if remaining is not None:
            self._broadcast_members(remaining)

    def probe(self, holder: Address, probe: Probe) -> None:
        """Ask the connection holding an ID whether it is alive."""
        self._courier.deliver(holder, probe)

    def answer(self, to: Address, answer: ProbeAnswer) -> None:
        """Answer a probe."""
        self._courier.deliver(to, answer)

    def apply_view(self, room_id: str, room: RoomRecord | None) -> None:
        """Replace this node's view of one room (None: the room is gone)."""
        if room is None or not room.members:
            self._views.pop(room_id, None)
        else:
            self._views[room_id] = {m.id: m for m in room.members}

    # -- signaling -----------------------------------------------------------------------

    def relay(self, membership: Membership, kind: str, to: str, body: Mapping[str, Any],
              received_ns: int = 0) -> None:
        """Relay a signaling message to ``to`` in the sender's room, ``from`` set here.

        Raises :class:`NotInRoom` when the sender is not (or no longer) in the
        room and :class:`PeerNotFound` when ``to`` is not in the same room.
        """
        room_id = membership.room
        members = self._views.get(room_id)
        sender = members.get(membership.member) if members is not None else None
        # the membership holds the very Address object of the record: compare identity first
        # (a dataclass __eq__ is a Python call on every relay)
        if members is None or sender is None or (sender.address is not membership.address
                                                 and sender.address != membership.address):
            raise NotInRoom("join a room before sending signaling messages")
        target = members.get(to)
        if target is None:
            raise PeerNotFound(f"peer {to[:80]!r} is not in room {room_id!r}")
        if target is sender:
            raise InvalidField("'to' names yourself")
        self._courier.deliver(target.address, Relayed(kind, room_id, membership.member, to,
                                                      body, received_ns))

    # -- queries -------------------------------------------------------------------------

    def members(self, room_id: str) -> tuple[str, ...]:
        """Member IDs of a room in join order, as this node sees it."""
        return tuple(self._views.get(room_id, {}))

    def room_ids(self) -> tuple[str, ...]:
        """Rooms this node knows of."""
        return tuple(self._views)

    def counts(self) -> tuple[int, int]:
        """(rooms, members) as this node sees them."""
        return len(self._views), sum(len(v) for v in self._views.values())

    def _broadcast_members(self, room: RoomRecord) -> None:
        event = RoomMembers(room.id, room.member_ids)
        for m in room.members:
            self._courier.deliver(m.address, event)
