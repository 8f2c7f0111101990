"""Room and member records and the pure decisions about them.

Every rule about who may join, who is replaced and when a room disappears
lives here as a function of the current records; the service in
:mod:`rtchub.features.rooms.service` applies them atomically through the state store.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from rtchub.base.connection import Address
from rtchub.config import Limits
from rtchub.errors import IdTaken, RoomFull, TooManyRooms, TopologyMismatch

__all__ = [
    "RECORDS",
    "ROOM_COUNT_KEY",
    "JoinDecision",
    "MemberRecord",
    "RoomRecord",
    "decide_join",
    "decide_leave",
    "hash_token",
    "room_key",
    "too_many_rooms",
]

# a counter (StateStore.count): rooms open in the whole deployment, capped at MAX_ROOMS
ROOM_COUNT_KEY = "rooms:count"
ROOM_PREFIX = "room:"


def room_key(room_id: str) -> str:
    """The state-store key of one room."""
    return f"{ROOM_PREFIX}{room_id}"


def hash_token(token: str) -> str:
    """Resume tokens are stored hashed, so a store dump cannot be replayed."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One member of a room: its ID, where its connection is, its hashed resume token."""

    id: str
    address: Address
    token_hash: str


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A room, its members in join order, and its topology (``mesh``; ``sfu`` for a call
    room whose media goes through the server)."""

    id: str
    members: tuple[MemberRecord, ...]
    topology: str = "mesh"

    def member(self, member_id: str) -> MemberRecord | None:
        """The member with this ID, if present."""
        for m in self.members:
            if m.id == member_id:
                return m
        return None

    @property
    def member_ids(self) -> tuple[str, ...]:
        """IDs in join order."""
        return tuple(m.id for m in self.members)


@dataclass(frozen=True, slots=True)
class JoinDecision:
    """What a join does: the room after it, and the member it displaced (on resume)."""

    room: RoomRecord
    replaced: MemberRecord | None
    created: bool


def decide_join(room: RoomRecord | None, room_id: str, member: MemberRecord,
                token: str | None, limits: Limits, take_over: Address | None = None,
                topology: str | None = None) -> JoinDecision:
    """Decide a join.

    * A new room is ``created``: it needs a slot under ``limits.max_rooms``, which the
      service reserves on the room counter (``ROOM_COUNT_KEY``) before it writes it.
    * A member ID held by another connection is taken, unless ``token`` is that
      member's resume token: then the newcomer takes its place (the old
      connection is ``replaced``) without changing the member order.
    * ``take_over`` is the holder the caller found dead (it did not answer a probe): if
      that connection still holds the ID, the newcomer takes its place with its own token.
    * A full room refuses newcomers; resuming into a full room is allowed.
    * ``topology`` (None: whatever the room has) must be the room's; a new room gets it
      (mesh by default).
    """
    if room is None:
        return JoinDecision(RoomRecord(room_id, (member,), topology or "mesh"), None,
                            created=True)
    if topology is not None and topology != room.topology:
        raise TopologyMismatch(f"room {room_id!r} is {room.topology}, not {topology}")
    existing = room.member(member.id)
    if existing is not None:
        if take_over is not None and existing.address == take_over:
            members = tuple(member if m.id == member.id else m for m in room.members)
            return JoinDecision(RoomRecord(room_id, members, room.topology), existing,
                                created=False)
        if token is None or not hmac.compare_digest(existing.token_hash, hash_token(token)):
            raise IdTaken(f"client ID {member.id!r} is taken in room {room_id!r}; "
                          "reconnect with its resume token or choose another ID",
                          existing.address)
        kept = MemberRecord(member.id, member.address, existing.token_hash)
        members = tuple(kept if m.id == member.id else m for m in room.members)
        return JoinDecision(RoomRecord(room_id, members, room.topology), existing,
                            created=False)
    if len(room.members) >= limits.max_room_members:
        raise RoomFull(f"room {room_id!r} is full ({limits.max_room_members} members)")
    return JoinDecision(RoomRecord(room_id, (*room.members, member), room.topology), None,
                        created=False)


def decide_leave(room: RoomRecord | None, member_id: str, address: Address
                 ) -> RoomRecord | None:
    """The room after ``member_id`` at ``address`` leaves; the same room if it is not there.

    A leave from a connection that was already replaced changes nothing: the
    member now belongs to its newer connection.
    """
    if room is None:
        return None
    kept = tuple(m for m in room.members if not (m.id == member_id and m.address == address))
    if len(kept) == len(room.members):
        return room
    return RoomRecord(room.id, kept, room.topology)


def too_many_rooms(limits: Limits) -> TooManyRooms:
    """The refusal of a new room when every slot is taken."""
    return TooManyRooms(f"the server holds the maximum of {limits.max_rooms} rooms")


# what the store holds for rooms (registered with the codec that carries it across nodes)
RECORDS = (RoomRecord,)
