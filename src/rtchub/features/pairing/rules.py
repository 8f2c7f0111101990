"""Pairing rules (seed 004): numeric codes, A/B pairs and per-side mailboxes. No I/O.

Every function here is a pure decision over immutable values: the service
hands them to :meth:`~rtchub.cluster.store.StateStore.transact` so that the
in-memory store and a later Redis store apply them atomically. Time comes in
as ``now`` (seconds on the hub's clock) and randomness as an injected
:class:`random.Random`, so expiry and code choice are tested without waiting.

State, by store key:

* ``pair:code:<code>`` -> :class:`CodeEntry`: the appID a code stands for, until when.
* ``pair:live`` -> ``int``: how many code entries exist (live, or expired and not yet
  swept): minting refuses once every code of the space has one.
* ``pair:codes:<n>`` -> :class:`Chain`: the codes minted to expire within bucket ``n``
  (``BUCKET`` seconds each), and ``pair:codes`` -> ``frozenset[int]``: the buckets that
  exist (a few dozen at most). The janitor drops whole buckets once they have passed.
* ``pair:app:<appID>`` -> :class:`Pair`: which side is connected where, and each
  side's inbox of mailbox messages.
* ``pair:apps`` -> :class:`Chain`: every pair's appID (the janitor's worklist).

Minting is O(1) whatever the number of live codes: a random code is tried against its
own key, and the worklists grow by prepending to an immutable chain (no copy of a table
per mint: an earlier design copied the whole code index on every mint, 45 -> 515 ms per
mint as 10,000 codes filled it).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from rtchub.base.connection import Address
from rtchub.errors import CodeGone, CodesExhausted, InvalidField, QueueFull, SideTaken

__all__ = [
    "APPS_KEY",
    "APP_PREFIX",
    "BUCKET",
    "BUCKETS_KEY",
    "LIVE_KEY",
    "RECORDS",
    "Chain",
    "CodeEntry",
    "CodeTaken",
    "Inbox",
    "Mail",
    "Pair",
    "Side",
    "acknowledge",
    "app_key",
    "bucket_key",
    "bucket_of",
    "chain_items",
    "chain_of_items",
    "choose_code",
    "code_key",
    "enqueue",
    "join",
    "leave",
    "mint",
    "redeem",
]

LIVE_KEY = "pair:live"
BUCKETS_KEY = "pair:codes"
APPS_KEY = "pair:apps"
APP_PREFIX = "pair:app:"
BUCKET = 10.0  # seconds of expiry times per sweep bucket


def code_key(code: str) -> str:
    """Store key of one code."""
    return f"pair:code:{code}"


def app_key(app_id: str) -> str:
    """Store key of one pair."""
    return f"{APP_PREFIX}{app_id}"


def bucket_of(expires_at: float) -> int:
    """The sweep bucket of an expiry time."""
    return int(expires_at // BUCKET)


def bucket_key(bucket: int) -> str:
    """Store key of one sweep bucket."""
    return f"pair:codes:{bucket}"


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
class Chain:
    """An immutable list that grows by prepending in O(1) (a cons cell)."""

    head: str
    rest: Chain | None = None

    def __iter__(self) -> Iterator[str]:
        node: Chain | None = self
        while node is not None:
            yield node.head
            node = node.rest

    @staticmethod
    def of(items: list[str]) -> Chain | None:
        """A chain of ``items`` (None when empty), in their order."""
        chain: Chain | None = None
        for item in reversed(items):
            chain = Chain(item, chain)
        return chain


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
    """Messages waiting for one side, oldest first; ``next_seq`` numbers the next one;
    ``size`` is the bytes their payloads hold."""

    next_seq: int = 1
    items: tuple[Mail, ...] = ()
    size: int = 0

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

    @property
    def held(self) -> int:
        """Bytes held in both inboxes."""
        return self.inboxes[0].size + self.inboxes[1].size

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


class CodeTaken(CodesExhausted):
    """The code chosen is live (another mint has it): choose again."""


def choose_code(digits: int, rng: random.Random) -> str:
    """A random code of ``digits`` digits (whether it is free is :func:`mint`'s to say)."""
    return f"{rng.randrange(10 ** digits):0{digits}d}"


def mint(entry: CodeEntry | None, live: int, code: str, app_id: str, now: float, ttl: float,
         digits: int, soonest: float | None) -> tuple[int, CodeEntry, Pair]:
    """Bind ``code`` to a new pair: (live count after, the code's entry, the pair).

    ``entry`` is what the code's key holds now: a live one raises :class:`CodeTaken`; an
    expired one not yet swept is replaced (the count stays). Past ``10**digits`` entries
    :class:`CodesExhausted` says when the earliest sweep bucket ends (``soonest``).
    """
    if entry is not None and entry.expires_at > now:
        raise CodeTaken(f"code {code} is live", 0.0)
    if entry is None and live >= 10 ** digits:
        wait = max((soonest if soonest is not None else now + ttl) - now, 1.0)
        raise CodesExhausted(f"all {10 ** digits} pairing codes are in use; retry when one "
                             "expires", wait)
    expires = now + ttl
    return (live if entry is not None else live + 1, CodeEntry(code, app_id, expires),
            Pair(app_id, expires))


def redeem(entry: CodeEntry | None, live: int, code: str, now: float) -> tuple[int, CodeEntry]:
    """Consume ``code`` once: the live count after and the entry it stood for.

    A used, expired or unknown code raises :class:`CodeGone` (HTTP 410).
    """
    if entry is None or entry.expires_at <= now:
        raise CodeGone(f"code {code} is used, expired or unknown")
    return max(live - 1, 0), entry


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
            ttl: float, max_bytes: int | None = None) -> tuple[Pair, Mail]:
    """Append a message to ``to``'s inbox; :class:`QueueFull` beyond ``limit`` messages or
    ``max_bytes`` of payload."""
    box = pair.inbox(to)
    if len(box.items) >= limit:
        raise QueueFull(f"side {to.value}'s mailbox holds {limit} unacknowledged messages; "
                        "wait for 'delivered'")
    if max_bytes is not None and box.size + len(payload) > max_bytes:
        raise QueueFull(f"side {to.value}'s mailbox would hold {box.size + len(payload)} "
                        f"bytes; the limit is {max_bytes} (PAIR_MAILBOX_BYTES): wait for "
                        "'delivered'")
    mail = Mail(box.next_seq, sender, payload)
    new_box = Inbox(box.next_seq + 1, (*box.items, mail), box.size + len(payload))
    return pair.with_inbox(to, new_box, now + ttl), mail


def acknowledge(pair: Pair, side: Side, up_to: int) -> Pair:
    """Drop ``side``'s messages up to and including ``up_to``."""
    box = pair.inbox(side)
    if up_to < 0 or up_to >= box.next_seq:
        raise InvalidField(f"seq {up_to} was never sent to side {side.value} "
                           f"(last is {box.next_seq - 1})")
    if not box.items or box.items[0].seq > up_to:
        return pair
    kept = box.after(up_to)
    return pair.with_inbox(side, Inbox(box.next_seq, kept, sum(len(m.payload) for m in kept)))


# what the store holds for pairing (registered with the codec that carries it); a Chain
# is stored flat, as the list of its items (see Codec.register_flat)
RECORDS = (CodeEntry, Pair)


def chain_items(chain: Chain) -> list[str]:
    """A chain's items as a list (its stored form)."""
    return list(chain)


def chain_of_items(items: list[str]) -> Chain:
    """A chain rebuilt from its stored form (never empty: an empty chain is None)."""
    chain = Chain.of(items)
    if chain is None:
        raise ValueError("a stored chain has at least one item")
    return chain
