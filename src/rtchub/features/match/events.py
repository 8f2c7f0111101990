"""What the matchmaking service tells users, as typed events for the courier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from rtchub.base.connection import Address

__all__ = ["EVENTS", "MatchAnswer", "MatchCandidate", "MatchChat", "MatchEvent", "MatchOffer",
           "Matched", "Unmatched"]


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


@dataclass(frozen=True, slots=True)
class MatchOffer:
    """Your partner's offer (``name`` is theirs, as they gave it in request-room)."""

    room: str
    sender: str
    name: str
    offer: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MatchAnswer:
    """Your partner's answer."""

    room: str
    sender: str
    name: str
    ans: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MatchCandidate:
    """One of your partner's ICE candidates (None: end of candidates)."""

    room: str
    sender: str
    candidate: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class MatchChat:
    """A chat message from your partner."""

    room: str
    sender: str
    message: str


MatchEvent = Matched | Unmatched | MatchOffer | MatchAnswer | MatchCandidate | MatchChat
EVENTS: Final = (Matched, Unmatched, MatchOffer, MatchAnswer, MatchCandidate, MatchChat)
