"""The matchmaking service: queue, pair, relay within a pair, end (seed 001).

State changes go through the backplane's state store with the pure rules of
:mod:`rtchub.features.match.rules`; events go out through the courier by address, so a
store and courier shared by several nodes share one queue. Relays are decided
synchronously against the pairing the connection was told about
(:class:`~rtchub.cluster.events.Matched`), which is the hot path (ICE candidates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rtchub.base.connection import Address
from rtchub.base.ids import IdFactory, random_token
from rtchub.base.ratelimit import FixedWindow
from rtchub.cluster.courier import Delivery
from rtchub.cluster.store import StateStore
from rtchub.config import Limits
from rtchub.errors import (
    ClusterUnavailable,
    InvalidField,
    NotInRoom,
    PeerNotFound,
    RateLimited,
    ServerError,
)
from rtchub.features.match.events import (
    MatchAnswer,
    MatchCandidate,
    MatchChat,
    Matched,
    MatchOffer,
    Unmatched,
)
from rtchub.features.match.rules import (
    COUNTS_KEY,
    QUEUE_KEY,
    ROOM_PREFIX,
    Busy,
    MatchCounts,
    MatchQueue,
    Paired,
    Pairing,
    Queued,
    RequestOutcome,
    Seeker,
    Stale,
    UserRecord,
    avoid_for,
    decide_end,
    decide_leave,
    decide_request,
    pick,
    room_key,
    user_key,
)

__all__ = ["MatchStatus", "Matchmaker"]

MAX_ATTEMPTS = 32
Alive = Callable[[Address], bool]


@dataclass(frozen=True, slots=True)
class MatchStatus:
    """What ``GET /api/status`` reports."""

    queue_size: int
    queue_users: tuple[str, ...]
    rooms_active: int
    rooms_total: int


class Matchmaker:
    """Fair random pairing of users into rooms of two. No I/O: store and courier injected.

    ``clock`` drives the per-user rate limits: ``MATCH_REQUEST_RATE`` is a window in the
    store (cluster-wide), ``MATCH_MESSAGE_RATE`` a window of this node (a Socket.IO socket
    and its chat live on one node, so its count is whole here, with no round trip on the
    relay path). ``room_ids`` makes room IDs. ``pairs_made`` counts the pairs this
    instance made.
    """

    def __init__(self, store: StateStore, courier: Delivery, limits: Limits, *,
                 clock: Callable[[], float], room_ids: IdFactory = random_token) -> None:
        self._store = store
        self._courier = courier
        self._limits = limits
        self._clock = clock
        self._new_room = room_ids
        self.pairs_made = 0
        # the store answers at once (the in-memory one): its work may run eagerly
        self.immediate = bool(getattr(store, "immediate", False))
        self._request_limit = FixedWindow(*limits.match_request_rate)
        self._message_limit = FixedWindow(*limits.match_message_rate)
        # signaling of this node's sockets: counted here, with no round trip on the relay path
        self._offer_limit = FixedWindow(*limits.match_offer_rate)
        self._candidate_limit = FixedWindow(*limits.match_candidate_rate)

    @property
    def limits(self) -> Limits:
        """The limits this service enforces."""
        return self._limits

    # -- rate limits ---------------------------------------------------------------------

    async def check_request_rate(self, user: str) -> None:
        """Count one ``request-room`` in the store's window (cluster-wide); raise
        :class:`RateLimited` past MATCH_REQUEST_RATE."""
        window = self._request_limit
        if window.limit <= 0:
            return
        hits, left = await self._store.hit(f"rl:match-request:{user}", window.window)
        if hits > window.limit:
            raise RateLimited(f"request-room is limited to {window.limit} per "
                              f"{window.window:g}s; retry in {left:.1f}s", max(left, 0.001))

    def check_message_rate(self, user: str) -> None:
        """Count one ``newMessage``; raise :class:`RateLimited` past MATCH_MESSAGE_RATE."""
        self._hit(self._message_limit, "newMessage", user)

    def check_offer_rate(self, user: str) -> None:
        """Count one offer or answer; raise :class:`RateLimited` past MATCH_OFFER_RATE."""
        self._hit(self._offer_limit, "negotiation-call-offer/answer", user)

    def check_candidate_rate(self, user: str) -> None:
        """Count one ICE candidate; raise :class:`RateLimited` past MATCH_CANDIDATE_RATE."""
        self._hit(self._candidate_limit, "send-new-ice-candidates", user)

    def _hit(self, window: FixedWindow, event: str, user: str) -> None:
        retry = window.hit(user, self._clock())
        if retry is not None:
            raise RateLimited(f"{event} is limited to {window.limit} per {window.window:g}s; "
                              f"retry in {retry:.1f}s", retry)

    # -- state changes -------------------------------------------------------------------

    async def request(self, user: str, address: Address, name: str, image: str,
                      previous_room: str | None) -> Queued | Pairing:
        """Queue ``user`` or pair them now; a room they are in ends first ("next").

        On a pairing both users get :class:`Matched`; a partner left behind by
        "next" gets :class:`Unmatched`.
        """
        record = await self._record(user)
        if record.room is not None:
            await self.end(user, record.room)
            record = await self._record(user)
        seeker = Seeker(user, address, name, image, avoid_for(record, previous_room),
                        self._clock())
        # a room ID (a getrandom() call) only once there is someone to pair with: every
        # other request of a busy queue just waits in it
        room_id = ""
        expected = await self._candidate(seeker)
        max_queue = self._limits.match_max_queue
        for _ in range(MAX_ATTEMPTS):
            if expected is not None and not room_id:
                room_id = self._new_room()
            outcome = await self._try_request(seeker, room_id, expected, max_queue)
            if type(outcome) is Stale:
                expected = outcome.candidate
            elif type(outcome) is Busy:
                await self.end(user, outcome.room)
                record = await self._record(user)
                seeker = Seeker(user, address, name, image, avoid_for(record, previous_room),
                                seeker.since)
                expected = await self._candidate(seeker)
            elif type(outcome) is Paired:
                self.pairs_made += 1
                self._announce(outcome.pairing)
                return outcome.pairing
            elif type(outcome) is Queued:
                return outcome
        raise ServerError("Server error: matchmaking could not settle under contention")

    async def _try_request(self, seeker: Seeker, room_id: str, expected: str | None,
                           max_queue: int) -> RequestOutcome:
        keys = [QUEUE_KEY, user_key(seeker.user), COUNTS_KEY]
        if expected is not None:
            keys += [user_key(expected), room_key(room_id)]
        return await self._store.transact(
            keys, lambda values: decide_request(values, seeker, room_id, expected, max_queue))

    async def end(self, user: str, room_id: str) -> Pairing | None:
        """End ``user``'s room ``room_id``; the partner gets :class:`Unmatched`. Idempotent."""
        value = await self._store.get(room_key(room_id))
        if not isinstance(value, Pairing):
            return None
        partner = value.other(user)
        if partner is None:
            return None
        ended = await self._store.transact(
            (room_key(room_id), user_key(user), user_key(partner.user), COUNTS_KEY),
            lambda values: decide_end(values, user, room_id))
        if ended is not None:
            self._courier.deliver(partner.address, Unmatched(room_id, user))
        return ended

    async def stop(self, user: str) -> str:
        """``stop-call``: end the user's room, or stop waiting. Returns what was stopped."""
        record = await self._record(user)
        if record.room is not None:
            await self.end(user, record.room)
            return "room"
        queue = await self._store.get(QUEUE_KEY)
        if isinstance(queue, MatchQueue) and queue.index(user) >= 0:
            await self._store.transact((QUEUE_KEY,), lambda values: (
                {QUEUE_KEY: _queue(values).without(user).stored()}, None))
            return "queue"
        raise NotInRoom("not in a call or in the queue; send request-room first")

    async def leave(self, user: str) -> None:
        """The user is gone: end their room (partner told), drop them from the queue."""
        for _ in range(MAX_ATTEMPTS):
            record = await self._record(user)
            if record.room is not None:
                await self.end(user, record.room)
            if await self._try_leave(user, record.room):
                return
        raise ServerError("Server error: leaving the match queue did not settle")

    async def _try_leave(self, user: str, ended: str | None) -> bool:
        def mutate(values: Mapping[str, object | None]
                   ) -> tuple[Mapping[str, object | None], bool]:
            current = values.get(user_key(user))
            if isinstance(current, UserRecord) and current.room not in (None, ended):
                return {}, False     # paired meanwhile: end that room first
            return decide_leave(values, user)[0], True

        return await self._store.transact((QUEUE_KEY, user_key(user)), mutate)

    # -- relay ---------------------------------------------------------------------------

    def _partner(self, view: Matched | None, sender: str, to: str, room_id: str | None
                 ) -> Matched:
        """The pairing a relay from ``sender`` to ``to`` may use; raises otherwise.

        ``view`` is the pairing the sender's connection was told about: NotInRoom without a
        pairing or for another ``room_id``, PeerNotFound when ``to`` is not the partner.
        """
        if view is None:
            raise NotInRoom("not matched with anyone; send request-room first")
        if room_id is not None and room_id != view.room:
            raise NotInRoom(f"not in room {room_id[:80]!r}; your room is {view.room!r}")
        if to == sender:
            raise InvalidField("the target socket is yourself")
        if to != view.partner:
            raise PeerNotFound(f"socket {to[:80]!r} is not your partner in room {view.room!r}")
        return view

    def offer(self, view: Matched | None, sender: str, name: str, to: str, room_id: str,
              offer: Mapping[str, Any]) -> None:
        """Relay an offer to the sender's partner only."""
        v = self._partner(view, sender, to, room_id)
        self._send(v, MatchOffer(v.room, sender, name, offer))

    def answer(self, view: Matched | None, sender: str, name: str, to: str, room_id: str,
               ans: Mapping[str, Any]) -> None:
        """Relay an answer to the sender's partner only."""
        v = self._partner(view, sender, to, room_id)
        self._send(v, MatchAnswer(v.room, sender, name, ans))

    def candidate(self, view: Matched | None, sender: str, to: str,
                  candidate: Mapping[str, Any] | None) -> None:
        """Relay an ICE candidate to the sender's partner only (the hot path)."""
        v = self._partner(view, sender, to, None)
        self._send(v, MatchCandidate(v.room, sender, candidate))

    def chat(self, view: Matched | None, sender: str, to: str, room_id: str | None,
             message: str) -> None:
        """Relay a chat message to the sender's partner only."""
        v = self._partner(view, sender, to, room_id)
        self._send(v, MatchChat(v.room, sender, message))

    def _send(self, view: Matched, event: object) -> None:
        if not self._courier.deliver(view.partner_address, event):
            raise ClusterUnavailable("your partner is on another node, which cannot be "
                                     "reached now (the cluster backplane is down)")

    # -- lost nodes ----------------------------------------------------------------------

    async def sweep_node(self, node: str, alive: Alive) -> None:
        """Users of ``node`` whose socket is gone leave: out of the queue, their rooms
        ended (the partner is told)."""
        def gone(seeker: Seeker) -> bool:
            return seeker.address.node == node and not alive(seeker.address)

        queue = await self._store.get(QUEUE_KEY)
        users = {e.user for e in queue.entries if gone(e)} \
            if isinstance(queue, MatchQueue) else set()
        for value in (await self._store.scan(ROOM_PREFIX)).values():
            if isinstance(value, Pairing):
                users.update(s.user for s in (value.first, value.second) if gone(s))
        for user in users:
            await self.leave(user)

    # -- queries -------------------------------------------------------------------------

    async def status(self, max_users: int = 100) -> MatchStatus:
        """Queue size and the names of its first ``max_users`` (seed 001 lists names; socket
        IDs would let anyone address a waiting user); active and total rooms."""
        queue = await self._store.get(QUEUE_KEY)
        counts = await self._store.get(COUNTS_KEY)
        entries = queue.entries if isinstance(queue, MatchQueue) else ()
        c = counts if isinstance(counts, MatchCounts) else MatchCounts()
        return MatchStatus(len(entries), tuple(e.name for e in entries[:max_users]),
                           c.active, c.total)

    # -- helpers -------------------------------------------------------------------------

    async def _record(self, user: str) -> UserRecord:
        value = await self._store.get(user_key(user))
        return value if isinstance(value, UserRecord) else UserRecord()

    async def _candidate(self, seeker: Seeker) -> str | None:
        queue = await self._store.get(QUEUE_KEY)
        found = pick(queue, seeker) if isinstance(queue, MatchQueue) else None
        return found.user if found is not None else None

    def _announce(self, pairing: Pairing) -> None:
        for me, other in ((pairing.first, pairing.second), (pairing.second, pairing.first)):
            self._courier.deliver(me.address, Matched(pairing.id, other.user, other.name,
                                                      other.image, other.address))


def _queue(values: Mapping[str, object | None]) -> MatchQueue:
    value = values.get(QUEUE_KEY)
    return value if isinstance(value, MatchQueue) else MatchQueue()
