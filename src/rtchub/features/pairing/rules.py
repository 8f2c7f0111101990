"""Pairing rules (seed 004): numeric codes, A/B pairs and per-side mailboxes. No I/O.

Every function here is a pure decision over immutable values: the service
hands them to :meth:`~rtchub.cluster.store.StateStore.transact` so that the
in-memory store and a later Redis store apply them atomically. Time comes in
as ``now`` (seconds on the hub's clock) and randomness as an injected
:class:`random.Random`, so expiry and code choice are tested without waiting.

State, by store key:

* ``pair:codes`` -> :class:`CodeIndex`: every minted, unredeemed code and its expiry.
* ``pair:code:<code>`` -> :class:`CodeEntry`: the appID a code stands for.
* ``pair:app:<appID>`` -> :class:`Pair`: which side is connected where, and each
  side's inbox of mailbox messages.
* ``pair:apps`` -> ``frozenset[str]``: every pair's appID (the janitor's worklist).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from rtchub.base.connection import Address
from rtchub.errors import CodeGone, CodesExhausted, InvalidField, QueueFull, SideTaken

__all__ = [
    "APPS_KEY",
    "APP_PREFIX",
    "CODES_KEY",
    "RECORDS",
    "CodeEntry",
    "CodeIndex",
    "Inbox",
    "Mail",
    "Pair",
    "Side",
    "acknowledge",
    "app_key",
    "choose_code",
    "code_key",
    "enqueue",
    "join",
    "leave",
    "mint",
    "redeem",
]

CODES_KEY = "pair:codes"
APPS_KEY = "pair:apps"
APP_PREFIX = "pair:app:"
_RANDOM_TRIES = 32
_ENUMERATE_LIMIT = 1_000_000


def code_key(code: str) -> str:
    """Store key of one code."""
    return f"pair:code:{code}"


def app_key(app_id: str) -> str:
    """Store key of one pair."""
    return f"{APP_PREFIX}{app_id}"


class Side(enum.Enum):
    """The two ends of a pair."""

    A = "A"
    B = "B"

    @property
    def other(self) -> Side:
        """The opposite side."""
        return Side.B if self is Side.A else Side.A

    @property
    def index(self) -> int:
        """0 for A, 1 for B (position in :class:`Pair` tuples)."""
        return 0 if self is Side.A else 1

    @classmethod
    def parse(cls, value: object) -> Side:
        """``"A"``/``"B"`` in either case; anything else is an :class:`InvalidField`."""
        if isinstance(value, str) and value.strip().upper() in ("A", "B"):
            return cls(value.strip().upper())
        raise InvalidField(f"side must be 'A' or 'B', got {str(value)[:20]!r}")


@dataclass(frozen=True, slots=True)
class CodeIndex:
    """Every minted, unredeemed code with its expiry (expired ones until swept)."""

    expiry: Mapping[str, float] = field(default_factory=dict)

    def live(self, now: float) -> int:
        """How many codes are still usable at ``now``."""
        return sum(1 for at in self.expiry.values() if at > now)

    def with_code(self, code: str, expires_at: float) -> CodeIndex:
        """A copy with ``code`` added or replaced."""
        expiry = dict(self.expiry)
        expiry[code] = expires_at
        return CodeIndex(expiry)

    def without(self, codes: set[str] | frozenset[str]) -> CodeIndex:
        """A copy without ``codes``."""
        return CodeIndex({c: at for c, at in self.expiry.items() if c not in codes})


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """What a live code stands for."""

    code: str
    app_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Mail:
    """One mailbox message: its sequence number in the recipient's inbox and the payload."""

    seq: int
    sender: Side
    payload: bytes  # the sender's ``payload`` value, as JSON text


@dataclass(frozen=True, slots=True)
class Inbox:
    """Messages waiting for one side, oldest first; ``next_seq`` numbers the next one."""

    next_seq: int = 1
    items: tuple[Mail, ...] = ()

    def after(self, seq: int) -> tuple[Mail, ...]:
        """Messages with a sequence number above ``seq``."""
        return tuple(m for m in self.items if m.seq > seq)


@dataclass(frozen=True, slots=True)
class Pair:
    """One pairing: the connection of each side (None when absent) and each side's inbox."""

    app_id: str
    expires_at: float
    conns: tuple[Address | None, Address | None] = (None, None)
    inboxes: tuple[Inbox, Inbox] = (Inbox(), Inbox())

    def conn(self, side: Side) -> Address | None:
        """Where ``side`` is connected, if it is."""
        return self.conns[side.index]

    def inbox(self, side: Side) -> Inbox:
        """Messages waiting for ``side``."""
        return self.inboxes[side.index]

    def expired(self, now: float) -> bool:
        """True when the pair outlived its TTL and nobody is connected."""
        return self.expires_at <= now and self.conns == (None, None)

    def with_conn(self, side: Side, addr: Address | None, touch: float) -> Pair:
        """A copy with ``side`` connected at ``addr`` (None: absent), alive until ``touch``
        at least."""
        conns = (addr, self.conns[1]) if side is Side.A else (self.conns[0], addr)
        return replace(self, conns=conns, expires_at=max(self.expires_at, touch))

    def with_inbox(self, side: Side, inbox: Inbox, touch: float | None = None) -> Pair:
        """A copy with ``side``'s inbox replaced (and the life extended to ``touch``)."""
        inboxes = (inbox, self.inboxes[1]) if side is Side.A else (self.inboxes[0], inbox)
        expires = self.expires_at if touch is None else max(self.expires_at, touch)
        return replace(self, inboxes=inboxes, expires_at=expires)


# -- codes ------------------------------------------------------------------------------


def choose_code(index: CodeIndex, now: float, digits: int, rng: random.Random) -> str:
    """A code that is not live at ``now`` (an expired, unswept one may be reused).

    Raises :class:`CodesExhausted` (with the seconds until the first live code
    expires) when every code of ``digits`` digits is live.
    """
    space = 10 ** digits
    taken = {c for c, at in index.expiry.items() if at > now}
    if len(taken) >= space:
        soonest = min(at for at in index.expiry.values() if at > now)
        raise CodesExhausted(f"all {space} pairing codes are in use; retry when one expires",
                             soonest - now)
    for _ in range(_RANDOM_TRIES):
        code = f"{rng.randrange(space):0{digits}d}"
        if code not in taken:
            return code
    if space > _ENUMERATE_LIMIT:  # pragma: no cover - needs > 1e6 live codes
        raise CodesExhausted("no free pairing code found; retry shortly", 1.0)
    free = [n for n in range(space) if f"{n:0{digits}d}" not in taken]
    return f"{rng.choice(free):0{digits}d}"


def mint(index: CodeIndex | None, code: str, app_id: str, now: float, ttl: float
         ) -> tuple[CodeIndex, CodeEntry, Pair]:
    """Bind ``code`` to a new pair; raises :class:`CodesExhausted` if the code went live
    meanwhile (the caller chooses again)."""
    index = index or CodeIndex()
    if index.expiry.get(code, 0.0) > now:
        raise CodesExhausted(f"code {code} was taken concurrently", 0.0)
    expires = now + ttl
    return (index.with_code(code, expires), CodeEntry(code, app_id, expires),
            Pair(app_id, expires))


def redeem(entry: CodeEntry | None, index: CodeIndex | None, code: str, now: float
           ) -> tuple[CodeIndex, CodeEntry]:
    """Consume ``code`` once: the index without it and the entry it stood for.

    A used, expired or unknown code raises :class:`CodeGone` (HTTP 410).
    """
    if entry is None or entry.expires_at <= now:
        raise CodeGone(f"code {code} is used, expired or unknown")
    index = index or CodeIndex()
    return index.without({code}), entry


# -- pairs and mailboxes ------------------------------------------------------------------


def join(pair: Pair | None, app_id: str, side: Side, addr: Address, now: float, ttl: float
         ) -> Pair:
    """Connect ``side`` of a live pair at ``addr``."""
    if pair is None or pair.expires_at <= now:
        raise CodeGone(f"appID {app_id} is unknown or expired")
    held = pair.conn(side)
    if held is not None:
        raise SideTaken(f"side {side.value} of this pair is already connected")
    return pair.with_conn(side, addr, now + ttl)


def leave(pair: Pair | None, side: Side, addr: Address, now: float, ttl: float) -> Pair | None:
    """Disconnect ``side`` if ``addr`` still holds it; the pair lives ``ttl`` longer."""
    if pair is None or pair.conn(side) != addr:
        return pair
    return pair.with_conn(side, None, now + ttl)


def enqueue(pair: Pair, sender: Side, to: Side, payload: bytes, limit: int, now: float,
            ttl: float) -> tuple[Pair, Mail]:
    """Append a message to ``to``'s inbox; :class:`QueueFull` beyond ``limit`` messages."""
    box = pair.inbox(to)
    if len(box.items) >= limit:
        raise QueueFull(f"side {to.value}'s mailbox holds {limit} unacknowledged messages; "
                        "wait for 'delivered'")
    mail = Mail(box.next_seq, sender, payload)
    new_box = Inbox(box.next_seq + 1, (*box.items, mail))
    return pair.with_inbox(to, new_box, now + ttl), mail


def acknowledge(pair: Pair, side: Side, up_to: int) -> Pair:
    """Drop ``side``'s messages up to and including ``up_to``."""
    box = pair.inbox(side)
    if up_to < 0 or up_to >= box.next_seq:
        raise InvalidField(f"seq {up_to} was never sent to side {side.value} "
                           f"(last is {box.next_seq - 1})")
    if not box.items or box.items[0].seq > up_to:
        return pair
    return pair.with_inbox(side, Inbox(box.next_seq, box.after(up_to)))


# what the store holds for pairing (registered with the codec that carries it)
RECORDS = (CodeIndex, CodeEntry, Pair)
