"""What the pairing service tells the sides of a pair, as typed events for the courier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rtchub.base.connection import Address
from rtchub.features.pairing.rules import Mail, Side

__all__ = ["EVENTS", "PairComplete", "PairEvent", "PairMail", "PairRelay", "PeerLeft"]


@dataclass(frozen=True, slots=True)
class PairComplete:
    """Both sides are connected (seed 004's ``room_full``); ``partner`` is the other
    side's connection, where this side's relayed frames go until :class:`PeerLeft`."""

    partner: Address


@dataclass(frozen=True, slots=True)
class PairRelay:
    """A signaling frame from the other side, exactly as it wrote it."""

    kind: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class PairMail:
    """A mailbox message for this side."""

    mail: Mail


@dataclass(frozen=True, slots=True)
class PeerLeft:
    """The other side (``side``) disconnected; its mailbox keeps messages for it."""

    side: Side


PairEvent = PairComplete | PairRelay | PairMail | PeerLeft
EVENTS: Final = (PairComplete, PairRelay, PairMail, PeerLeft)
