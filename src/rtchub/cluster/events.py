"""Typed events the core addresses to connections, and the courier that carries them.

The core names recipients by :class:`Address` (node and connection); the
courier delivers locally or through the backplane, and each connection renders
the event in its own dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Address", "Courier", "Event", "Joined", "Matched", "Relayed", "Replaced",
           "RoomMembers", "Unmatched"]


@dataclass(frozen=True, slots=True)
class Address:
    """Where a connection lives: the node that holds its socket and its connection ID."""

    node: str
    conn: str


@dataclass(frozen=True, slots=True)
class Joined:
    """You are in ``room`` as ``member``; ``token`` resumes this identity later."""

    room: str
    member: str
    members: tuple[str, ...]
    token: str


@dataclass(frozen=True, slots=True)
class RoomMembers:
    """The room's membership changed; ``members`` is the whole list in join order."""

    room: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Relayed:
    """A signaling message (offer, answer, candidate, hangup) from ``sender`` to ``to``.

    ``body`` holds the payload fields (``sdp``, ``candidate``) exactly as the
    sender wrote them; ``sender`` is set by the server, never by the client.
    """

    kind: str
    room: str
    sender: str
    to: str
    body: Mapping[str, Any]
    received_ns: int = 0


@dataclass(frozen=True, slots=True)
class Replaced:
    """This connection's identity was resumed by a newer connection: close it."""

    room: str
    member: str


@dataclass(frozen=True, slots=True)
class Matched:
    """Matchmaking paired you with ``partner`` in the two-person room ``room``."""

    room: str
    partner: str
    partner_name: str
    partner_image: str
    partner_address: Address


@dataclass(frozen=True, slots=True)
class Unmatched:
    """Your partner in ``room`` left (stop, next or disconnect); the room is over."""

    room: str
    by: str


Event = Joined | RoomMembers | Relayed | Replaced | Matched | Unmatched


class Courier(Protocol):
    """Carries an event to the connection at an address (locally or across nodes)."""

    def deliver(self, to: Address, event: Event) -> None:
        """Hand ``event`` to the connection at ``to``; never blocks, never raises."""
        ...
