"""What the rooms service tells connections, as typed events for the courier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from rtchub.base.connection import Address

__all__ = ["EVENTS", "Joined", "Probe", "ProbeAnswer", "Relayed", "Replaced", "RoomEvent",
           "RoomMembers"]


@dataclass(frozen=True, slots=True)
class Joined:
    """You are in ``room`` as ``member``; ``token`` resumes this identity later.
    ``topology`` is the room's; ``call`` the call-room fields ``joined`` gains (seed 003)."""

    room: str
    member: str
    members: tuple[str, ...]
    token: str
    topology: str = "mesh"
    call: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RoomMembers:
    """The room's membership changed; ``members`` is the whole list in join order."""

    room: str
    members: tuple[str, ...]


class Relayed(msgspec.Struct, frozen=True, gc=False):
    """A signaling message (offer, answer, candidate, hangup) from ``sender`` to ``to``.

    ``body`` holds the payload fields (``sdp``, ``candidate``) exactly as the
    sender wrote them; ``sender`` is set by the server, never by the client.

    One is made per relayed message, so it is a frozen ``msgspec.Struct`` rather than a
    frozen dataclass: built in C (a frozen dataclass's ``__init__`` makes one
    ``object.__setattr__`` call per field, about 5% of the server's CPU per relay at
    10,000 connections), immutable, matched and compared the same way, and encoded field
    by field by the cluster codec like a dataclass. Untracked by the cyclic collector
    (``gc=False``): it refers to nothing that refers back to it.
    """

    kind: str
    room: str
    sender: str
    to: str
    body: Mapping[str, Any]
    received_ns: int = 0


@dataclass(frozen=True, slots=True)
class Replaced:
    """This connection's identity went to a newer connection: close it with ``reason``."""

    room: str
    member: str
    reason: str = "session resumed by another connection"


@dataclass(frozen=True, slots=True)
class Probe:
    """Someone asks for your ID: answer ``reply_to`` whether your connection is alive."""

    room: str
    member: str
    reply_to: Address
    probe_id: int


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """The holder of an ID you asked for is alive (or not)."""

    probe_id: int
    alive: bool


RoomEvent = Joined | RoomMembers | Relayed | Replaced | Probe | ProbeAnswer
EVENTS = (Joined, RoomMembers, Relayed, Replaced, Probe, ProbeAnswer)
