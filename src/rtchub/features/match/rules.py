"""Matchmaking rules (seed 001): a fair queue and rooms of two, as pure functions.

State lives in the backplane store under these keys (values are frozen records):

    match:queue          MatchQueue   the waiting users, oldest first
    match:user:{user}    UserRecord   the user's current room and the last room they left
    match:room:{room}    Pairing      a live room of exactly two users
    match:counts         MatchCounts  rooms active now and rooms created since start

Every rule here takes the current values and returns ``(updates, outcome)`` for
:meth:`~rtchub.cluster.store.StateStore.transact`; nothing here does I/O.

The rules:

* First come, first matched: a newcomer is paired with the oldest waiting user
  it is compatible with; if there is none it waits at the end of the queue.
* Never yourself: a user's own queue entry is never its candidate.
* No rematch at once: a ``request-room`` whose ``roomId`` names the room the
  user just left (as the server recorded it) does not pair the user with that
  room's other user; the newcomer skips them and, if nobody else waits, waits.
  The rule binds both ways and lasts for that one queue entry: the next request
  without that ``roomId`` may pair them again. A ``roomId`` the user was not in
  is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from rtchub.base.connection import Address
from rtchub.errors import QueueFull

__all__ = [
    "COUNTS_KEY",
    "QUEUE_KEY",
    "RECORDS",
    "ROOM_PREFIX",
    "Busy",
    "MatchCounts",
    "MatchQueue",
    "Paired",
    "Pairing",
    "Queued",
    "RequestOutcome",
    "Seeker",
    "Stale",
    "UserRecord",
    "avoid_for",
    "compatible",
    "decide_end",
    "decide_leave",
    "decide_request",
    "pick",
    "room_key",
    "user_key",
]

QUEUE_KEY = "match:queue"
COUNTS_KEY = "match:counts"
ROOM_PREFIX = "match:room:"

Values = Mapping[str, object | None]
Updates = dict[str, object | None]


def user_key(user: str) -> str:
    """Store key of a user's record."""
    return f"match:user:{user}"


def room_key(room: str) -> str:
    """Store key of a live room."""
    return f"{ROOM_PREFIX}{room}"


@dataclass(frozen=True, slots=True)
class Seeker:
    """A user asking for a partner: who, where to deliver, how to show them."""

    user: str
    address: Address
    name: str
    image: str
    avoid: str | None = None
    since: float = 0.0


@dataclass(frozen=True, slots=True)
class MatchQueue:
    """The waiting users, oldest first."""

    entries: tuple[Seeker, ...] = ()

    def index(self, user: str) -> int:
        """Position of ``user`` (-1 when not waiting)."""
        for i, entry in enumerate(self.entries):
            if entry.user == user:
                return i
        return -1

    def without(self, user: str) -> MatchQueue:
        """The queue with ``user`` removed."""
        return MatchQueue(tuple(e for e in self.entries if e.user != user))

    def stored(self) -> MatchQueue | None:
        """The value to store: None (delete the key) when empty."""
        return self if self.entries else None


@dataclass(frozen=True, slots=True)
class Pairing:
    """A live room of two: ``first`` waited, ``second`` arrived and was matched."""

    id: str
    first: Seeker
    second: Seeker
    created: float

    def __post_init__(self) -> None:
        if self.first.user == self.second.user:
            raise ValueError(f"a room pairs two different users, got {self.first.user!r} twice")

    def other(self, user: str) -> Seeker | None:
        """The partner of ``user`` (None when ``user`` is not in this room)."""
        if user == self.first.user:
            return self.second
        if user == self.second.user:
            return self.first
        return None


@dataclass(frozen=True, slots=True)
class UserRecord:
    """Where a user stands: the room they are in, and the last room they left."""

    room: str | None = None
    last_room: str | None = None
    last_partner: str | None = None


@dataclass(frozen=True, slots=True)
class MatchCounts:
    """Rooms active now and rooms created since the store began."""

    active: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True)
class Queued:
    """The user waits at ``position`` (0 is next)."""

    position: int


@dataclass(frozen=True, slots=True)
class Paired:
    """The user was paired: ``pairing.second`` is the requester."""

    pairing: Pairing


@dataclass(frozen=True, slots=True)
class Stale:
    """The candidate read before the transaction changed; retry expecting ``candidate``."""

    candidate: str | None


@dataclass(frozen=True, slots=True)
class Busy:
    """The user is in room ``room``; end it first."""

    room: str


RequestOutcome = Queued | Paired | Stale | Busy


def compatible(a: Seeker, b: Seeker) -> bool:
    """May ``a`` and ``b`` be paired now? Never oneself, never an avoided partner."""
    return b.user not in (a.user, a.avoid) and b.avoid != a.user


def pick(queue: MatchQueue, seeker: Seeker) -> Seeker | None:
    """The oldest waiting user compatible with ``seeker``."""
    for entry in queue.entries:
        if compatible(entry, seeker):
            return entry
    return None


def _queue_of(values: Values) -> MatchQueue:
    value = values.get(QUEUE_KEY)
    return value if isinstance(value, MatchQueue) else MatchQueue()


def _user_of(values: Values, user: str) -> UserRecord:
    value = values.get(user_key(user))
    return value if isinstance(value, UserRecord) else UserRecord()


def _counts_of(values: Values) -> MatchCounts:
    value = values.get(COUNTS_KEY)
    return value if isinstance(value, MatchCounts) else MatchCounts()


def avoid_for(record: UserRecord, previous_room: str | None) -> str | None:
    """The partner not to rematch: set only when ``previous_room`` is the room just left."""
    if previous_room is not None and previous_room == record.last_room:
        return record.last_partner
    return None


def decide_request(values: Values, seeker: Seeker, room_id: str, expected: str | None,
                   max_queue: int) -> tuple[Updates, RequestOutcome]:
    """Queue ``seeker`` or pair it with the oldest compatible waiting user.

    ``expected`` is the candidate the caller read before the transaction (its
    record key is among the keys); when the fresh queue names another, the
    outcome is :class:`Stale` and nothing changes. A user already waiting
    keeps their place. Raises :class:`QueueFull` at ``max_queue`` waiting.
    """
    me = _user_of(values, seeker.user)
    if me.room is not None:
        return {}, Busy(me.room)
    queue = _queue_of(values)
    candidate = pick(queue, seeker)
    if (candidate.user if candidate is not None else None) != expected:
        return {}, Stale(candidate.user if candidate is not None else None)
    if candidate is None:
        at = queue.index(seeker.user)
        if at >= 0:
            kept = replace(seeker, since=queue.entries[at].since)
            entries = (*queue.entries[:at], kept, *queue.entries[at + 1:])
            return {QUEUE_KEY: MatchQueue(entries)}, Queued(at)
        if len(queue.entries) >= max_queue:
            raise QueueFull(f"the match queue is full ({max_queue} waiting); try again later")
        return ({QUEUE_KEY: MatchQueue((*queue.entries, seeker)), user_key(seeker.user): me},
                Queued(len(queue.entries)))
    pairing = Pairing(room_id, candidate, seeker, seeker.since)
    rest = queue.without(candidate.user).without(seeker.user)
    counts = _counts_of(values)
    them = _user_of(values, candidate.user)
    return ({
        QUEUE_KEY: rest.stored(),
        room_key(room_id): pairing,
        # (built directly: dataclasses.replace costs a few µs per call on every pairing)
        user_key(seeker.user): UserRecord(room_id, me.last_room, me.last_partner),
        user_key(candidate.user): UserRecord(room_id, them.last_room, them.last_partner),
        COUNTS_KEY: MatchCounts(counts.active + 1, counts.total + 1),
    }, Paired(pairing))


def decide_end(values: Values, user: str, room_id: str) -> tuple[Updates, Pairing | None]:
    """End ``room_id`` if ``user`` is in it; both users remember it as their last room.

    Returns the ended pairing, or None when there was nothing to end.
    """
    pairing = values.get(room_key(room_id))
    if not isinstance(pairing, Pairing):
        return {}, None
    partner = pairing.other(user)
    if partner is None:
        return {}, None
    counts = _counts_of(values)
    updates: Updates = {room_key(room_id): None,
                        COUNTS_KEY: MatchCounts(max(counts.active - 1, 0), counts.total)}
    for who, other in ((user, partner.user), (partner.user, user)):
        record = _user_of(values, who)
        if record.room == room_id:
            updates[user_key(who)] = UserRecord(None, room_id, other)
    return updates, pairing


def decide_leave(values: Values, user: str) -> tuple[Updates, UserRecord]:
    """Forget a user who is gone: out of the queue, record deleted (end the room first)."""
    queue = _queue_of(values)
    updates: Updates = {user_key(user): None}
    if queue.index(user) >= 0:
        updates[QUEUE_KEY] = queue.without(user).stored()
    return updates, _user_of(values, user)


# what the store holds for matchmaking (registered with the codec that carries it)
RECORDS = (MatchQueue, Pairing, UserRecord, MatchCounts)
