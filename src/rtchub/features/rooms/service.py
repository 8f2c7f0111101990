"""The rooms service: join, leave and relay for mesh signaling (seed 000).

State changes go through the state store atomically (rules in
:mod:`rtchub.features.rooms.rules`); relays are decided synchronously against a
node-local view of each room. The views follow the store's change feed
(:meth:`~rtchub.cluster.store.StateStore.follow`), which reports every committed change
of a room, this node's and other nodes', in commit order and before the join or leave
that made it returns here: a member told ``room_members`` may relay at once. The number
of rooms is a store counter (one atomic step, not a key every join must watch), so a
room's transactions touch that room's key only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rtchub.base.connection import Address
from rtchub.base.ids import IdFactory, random_id, random_token, validate_id
from rtchub.cluster.courier import Delivery
from rtchub.cluster.store import StateStore
from rtchub.config import Limits
from rtchub.errors import ClusterUnavailable, InvalidField, NotInRoom, PeerNotFound, RtcHubError
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
    ROOM_PREFIX,
    JoinDecision,
    MemberRecord,
    RoomRecord,
    decide_join,
    decide_leave,
    hash_token,
    room_key,
    too_many_rooms,
)

__all__ = ["Enter", "Membership", "Rooms"]

MAX_TOKEN_LENGTH = 128
Alive = Callable[[Address], bool]
# the call rooms' part of a join (seed 003): (room, member, topology) -> joined's fields
Enter = Callable[[str, str, str], Awaitable[dict[str, Any]]]


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
        # this node's memberships (restored after the store lost them): address -> record
        self._local: dict[Address, tuple[Membership, MemberRecord]] = {}
        store.follow(ROOM_PREFIX, _ViewFollower(self))

    @property
    def limits(self) -> Limits:
        """The limits this service enforces."""
        return self._limits

    # -- state changes -------------------------------------------------------------------

    async def join(self, room_id: object, member_id: object, address: Address,
                   token: object = None, take_over: Address | None = None, *,
                   topology: str | None = None, enter: Enter | None = None) -> Membership:
        """Join ``room_id`` as ``member_id`` (a fresh random ID when None).

        Delivers ``Joined`` to the joiner and ``RoomMembers`` to everyone in the
        room; a resumed identity's old connection gets ``Replaced``. ``take_over`` is a
        holder of the ID that did not answer a probe: the newcomer takes its place.
        ``topology`` must be the room's (None: any; a new room gets it, mesh by default).
        ``enter(room, member, topology)`` runs once the member is in, before ``Joined``:
        it returns the call-room fields ``Joined`` carries; if it raises, the member is
        taken out again and the error stands.
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
        decision = await self._write_join(room, record, token if isinstance(token, str)
                                          else None, take_over, topology)
        membership = Membership(room, member, address)
        call: dict[str, Any] | None = None
        if enter is not None:
            try:
                call = await enter(room, member, decision.room.topology)
            except BaseException:
                self._local[address] = (membership, record)
                await self.leave(membership)
                raise
        self._local[address] = (membership, record)
        if decision.replaced is not None:
            self._local.pop(decision.replaced.address, None)
            reason = ("client ID taken over: this connection did not answer a ping"
                      if take_over is not None else "session resumed by another connection")
            self._courier.deliver(decision.replaced.address, Replaced(room, member, reason))
        self._courier.deliver(address, Joined(room, member, decision.room.member_ids, issued,
                                              decision.room.topology, call))
        self._broadcast_members(decision.room)
        return membership

    async def _write_join(self, room: str, record: MemberRecord, token: str | None,
                          take_over: Address | None = None, topology: str | None = None
                          ) -> JoinDecision:
        """Apply a join; a new room first takes a slot on the room counter."""
        limits = self._limits
        reserved = False

        def mutate(values: Mapping[str, object | None]
                   ) -> tuple[Mapping[str, object | None], JoinDecision]:
            current = values.get(room_key(room))
            decision = decide_join(current if isinstance(current, RoomRecord) else None,
                                   room, record, token, limits, take_over, topology)
            if decision.created and not reserved:
                return {}, decision   # take a slot first, then try again
            return {room_key(room): decision.room}, decision

        try:
            while True:
                decision = await self._store.transact((room_key(room),), mutate)
                if not decision.created or reserved:
                    break
                if await self._store.count(ROOM_COUNT_KEY, 1, limits.max_rooms) is None:
                    raise too_many_rooms(limits)
                reserved = True
        except BaseException:
            if reserved:
                await self._store.count(ROOM_COUNT_KEY, -1)
            raise
        if reserved and not decision.created:   # someone else created it meanwhile
            await self._store.count(ROOM_COUNT_KEY, -1)
        return decision

    async def leave(self, membership: Membership) -> None:
        """Leave the room; the last member out deletes it. Idempotent."""
        room_id, member_id, address = membership.room, membership.member, membership.address
        if self._local.get(address, (None,))[0] == membership:
            del self._local[address]

        def mutate(values: Mapping[str, object | None]
                   ) -> tuple[Mapping[str, object | None], tuple[RoomRecord | None, bool]]:
            current = values.get(room_key(room_id))
            before = current if isinstance(current, RoomRecord) else None
            after = decide_leave(before, member_id, address)
            if after is before:
                return {}, (before, False)
            if after is None or not after.members:
                return {room_key(room_id): None}, (None, True)
            return {room_key(room_id): after}, (after, False)

        remaining, deleted = await self._store.transact((room_key(room_id),), mutate)
        if deleted:
            await self._store.count(ROOM_COUNT_KEY, -1)
        if remaining is not None:
            self._broadcast_members(remaining)

    async def sweep_node(self, node: str, alive: Alive) -> None:
        """Remove the members of ``node`` whose connection is gone (a lost node: all of
        them), telling each room; on this node, put back members the store lost."""
        gone = [Membership(room_id, m.id, m.address)
                for room_id, members in list(self._views.items())
                for m in members.values() if m.address.node == node and not alive(m.address)]
        for membership in gone:
            await self.leave(membership)
        for address, (membership, record) in list(self._local.items()):
            if address.node != node or not alive(address):
                continue
            view = self._views.get(membership.room, {})
            if membership.member in view:
                continue
            try:   # the store lost it (Redis restarted empty, or this node was swept)
                decision = await self._write_join(membership.room, record, None)
            except ClusterUnavailable:
                raise
            except RtcHubError:   # full, or the ID was taken meanwhile: close it
                self._local.pop(address, None)
                self._courier.deliver(address, Replaced(membership.room, membership.member))
                continue
            self._broadcast_members(decision.room)

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

    def reset_views(self, rooms: Iterable[RoomRecord]) -> None:
        """Replace every view (the store was re-read after a reconnect): this node's
        members of a room that changed meanwhile get ``room_members`` (what other nodes
        sent while this one was away is lost)."""
        before = self._views
        self._views = {room.id: {m.id: m for m in room.members} for room in rooms
                       if room.members}
        for room_id, view in self._views.items():
            old = before.get(room_id)
            if old is not None and tuple(old) == tuple(view) and all(
                    old[k].address == view[k].address for k in view):
                continue
            local = [m.address for m in view.values() if m.address in self._local]
            event = RoomMembers(room_id, tuple(view))
            for address in local:
                self._courier.deliver(address, event)

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
        if not self._courier.deliver(target.address, Relayed(kind, room_id, membership.member,
                                                             to, body, received_ns)):
            raise ClusterUnavailable(f"peer {to[:80]!r} is on another node, which cannot be "
                                     "reached now (the cluster backplane is down)")

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


class _ViewFollower:
    """Feeds the store's change feed of rooms into the service's views."""

    __slots__ = ("_rooms",)

    def __init__(self, rooms: Rooms) -> None:
        self._rooms = rooms

    def changed(self, key: str, value: object | None) -> None:
        self._rooms.apply_view(key[len(ROOM_PREFIX):],
                               value if isinstance(value, RoomRecord) else None)

    def reset(self, items: Mapping[str, object]) -> None:
        self._rooms.reset_views(v for v in items.values() if isinstance(v, RoomRecord))
