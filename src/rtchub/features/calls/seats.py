"""Plain mesh members whose call-room records are not made yet.

:class:`MeshSeats` is one part of :class:`~rtchub.features.calls.service.CallService`
(mixed into it, never used alone). A seed-000 join of a mesh room that names no call-room
field only takes a :class:`Seat` (member, connection, when it joined); the room's
:class:`~.rules.CallRoom` and its :class:`~.rules.Participant` records, as a full join
would have made them, are made from the seats the first time anything asks for the room
(:meth:`MeshSeats._room`): participants, a call frame, the Python API, a call-aware join.
Counting and locating a member need no records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rtchub.base.connection import Address
from rtchub.errors import NotInRoom, PeerAlreadyExists, RoomFull, TopologyMismatch
from rtchub.features.calls.rules import CallRoom, Grants, Participant, Topology

__all__ = ["MeshSeats", "Seat"]

log = logging.getLogger("rtchub.calls")


class Seat:
    """A plain mesh member whose call-room records are not made yet."""

    __slots__ = ("address", "joined_at", "member", "room")

    def __init__(self, room: str, member: str, address: Address, joined_at: float) -> None:
        self.room = room
        self.member = member
        self.address = address
        self.joined_at = joined_at


class MeshSeats:
    """Seats of plain mesh members and the records made from them; see the module
    docstring."""

    _rooms: dict[str, CallRoom]
    _seats: dict[str, list[Seat]]   # room -> its seats in join order
    _seated: dict[Address, Seat]    # each seat by its connection
    _addresses: dict[tuple[str, str], Address]
    _where: dict[Address, tuple[str, str]]
    _max_members: int
    _wall: Callable[[], float]

    if TYPE_CHECKING:  # given by the service this is part of
        def admit(self, room_id: str, participant_id: str, topology: Topology | None
                  ) -> Topology: ...
        async def join(self, room_id: str, user_id: str, *, topology: Topology | str | None,
                       address: Address | None) -> Participant: ...

    def _room(self, room_id: str) -> CallRoom | None:
        """The room, its records made from its seats first if it has only seats."""
        room = self._rooms.get(room_id)
        if room is None and room_id in self._seats:
            room = self._materialize(room_id)
        return room

    def _materialize(self, room_id: str) -> CallRoom:
        """Make a seated mesh room's records, as the joins would have made them."""
        seats = self._seats.pop(room_id)
        room = self._rooms[room_id] = CallRoom(room_id, Topology.MESH, room_id,
                                               self._max_members)
        for seat in seats:
            if self._seated.get(seat.address) is seat:
                del self._seated[seat.address]
            room.participants[seat.member] = Participant(
                seat.member, seat.member, {}, True, True, seat.joined_at,
                Grants(seat.member, room_id))
            key = (room_id, seat.member)
            self._addresses[key] = seat.address
            self._where[seat.address] = key
        return room

    def _admit_seated(self, room_id: str, participant_id: str, topology: Topology | None
                      ) -> bool:
        """:meth:`CallService.admit` for a seated room (True), without making its records:
        it is mesh, and a newcomer needs a free place."""
        seats = self._seats.get(room_id)
        if seats is None:
            return False
        if topology is not None and topology is not Topology.MESH:
            raise TopologyMismatch(f"room {room_id!r} is mesh, not {topology.value}")
        if len(seats) >= self._max_members and not any(
                seat.member == participant_id for seat in seats):
            raise RoomFull(f"room {room_id!r} is full ({self._max_members} members)")
        return True

    def pending(self, room_id: str) -> tuple[str, ...]:
        """Members of a mesh room whose call-room records are not made yet (a room with
        any has no records at all), in join order."""
        return tuple(seat.member for seat in self._seats.get(room_id, ()))

    def holds(self, room_id: str) -> bool:
        """True while this node holds the room (with records or only seats)."""
        return room_id in self._rooms or room_id in self._seats

    def has_participant(self, room_id: str, user_id: str) -> bool:
        """True if ``user_id`` is in the room (seated or with records)."""
        room = self._rooms.get(room_id)
        if room is not None:
            return user_id in room.participants
        return any(seat.member == user_id for seat in self._seats.get(room_id, ()))

    def room_counts(self) -> dict[str, int]:
        """Rooms on this node by topology (seated rooms are mesh), made or not."""
        counts = {"mesh": len(self._seats), "sfu": 0}
        for room in self._rooms.values():
            counts[room.topology.value] += 1
        return counts

    def participant_count(self) -> int:
        """Participants on this node, seated or with records."""
        return (sum(len(seats) for seats in self._seats.values())
                + sum(len(r.participants) for r in self._rooms.values()))

    async def seat(self, room_id: str, user_id: str, address: Address) -> None:
        """A plain join of a mesh room from the connection at ``address`` (no display
        name, metadata, grants or settings: seed 000's own join): the member is in the
        room, its records are made when the room is first asked for (module docstring).
        A room with records already gets a full :meth:`join`. Raises like :meth:`join`."""
        if room_id in self._rooms:
            await self.join(room_id, user_id, topology=Topology.MESH, address=address)
            return
        self.admit(room_id, user_id, Topology.MESH)
        seats = self._seats.setdefault(room_id, [])
        if any(seat.member == user_id for seat in seats):
            raise PeerAlreadyExists(f"{user_id!r} is already in room {room_id!r}")
        seat = Seat(room_id, user_id, address, self._wall())
        seats.append(seat)
        self._seated[address] = seat

    def _unseat(self, room_id: str, seats: list[Seat], user_id: str) -> None:
        for i, seat in enumerate(seats):
            if seat.member == user_id:
                del seats[i]
                if self._seated.get(seat.address) is seat:
                    del self._seated[seat.address]
                if not seats:
                    del self._seats[room_id]
                log.info("call left", extra={"room": room_id, "member": user_id})
                return
        raise NotInRoom(f"{user_id!r} is not in call room {room_id!r}")
