"""Random sequences of requests, stops and departures keep the matchmaking invariants.

After every step: nobody is paired with themself, nobody is both waiting and in a
room, every room's two users point back at it, the active count matches the rooms,
and what each connected user was told (Matched / Unmatched) agrees with the store.
"""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from rtchub.base.connection import Address
from rtchub.cluster.memory import MemoryStore
from rtchub.config import Limits
from rtchub.errors import NotInRoom
from rtchub.features.match.events import EVENTS, Matched, Unmatched
from rtchub.features.match.rules import (
    COUNTS_KEY,
    QUEUE_KEY,
    MatchCounts,
    MatchQueue,
    Pairing,
    UserRecord,
    room_key,
    user_key,
)
from rtchub.features.match.service import Matchmaker

USERS = ["u0", "u1", "u2", "u3"]
Op = tuple[str, str, bool]


class Views:
    """A courier that keeps, per connected user, the pairing it was last told about."""

    def __init__(self) -> None:
        self.room: dict[str, str | None] = {}
        self.gone: set[str] = set()

    def deliver(self, to: Address, event: object) -> bool:
        assert isinstance(event, EVENTS)
        assert to.conn not in self.gone, f"event {event} delivered to departed {to.conn}"
        if type(event) is Matched:
            self.room[to.conn] = event.room
        elif type(event) is Unmatched and self.room.get(to.conn) == event.room:
            self.room[to.conn] = None
        return True


async def check(store: MemoryStore, views: Views, online: set[str]) -> None:
    queue = await store.get(QUEUE_KEY)
    waiting = [e.user for e in queue.entries] if isinstance(queue, MatchQueue) else []
    assert len(waiting) == len(set(waiting)), waiting
    rooms: dict[str, Pairing] = {}
    for user in USERS:
        record = await store.get(user_key(user))
        if user not in online:
            assert record is None and user not in waiting, user
            continue
        room = record.room if isinstance(record, UserRecord) else None
        assert views.room.get(user) == room, (user, views.room.get(user), room)
        if room is not None:
            assert user not in waiting
            pairing = await store.get(room_key(room))
            assert isinstance(pairing, Pairing)
            partner = pairing.other(user)
            assert partner is not None and partner.user != user and partner.user in online
            rooms[room] = pairing
    counts = await store.get(COUNTS_KEY)
    active = counts.active if isinstance(counts, MatchCounts) else 0
    assert active == len(rooms)


ops = st.lists(st.tuples(st.sampled_from(["request", "stop", "leave"]),
                         st.sampled_from(USERS), st.booleans()), max_size=40)


@settings(max_examples=200, deadline=None)
@given(ops)
@example([("request", "u0", False), ("request", "u1", False), ("stop", "u0", False),
          ("request", "u0", True), ("request", "u1", True), ("request", "u2", True)])
def test_invariants_hold(steps: list[Op]) -> None:
    asyncio.run(run(steps))


async def run(steps: list[Op]) -> None:
    store, views = MemoryStore(lambda: 0.0), Views()
    counter = iter(range(10_000))
    mm = Matchmaker(store, views, Limits(), clock=lambda: 0.0,
                    room_ids=lambda: f"r{next(counter)}")
    online: set[str] = set()
    last_room: dict[str, str | None] = {}
    for op, user, with_room in steps:
        address = Address("n", user)
        if op == "request":     # also "next" when in a room
            views.gone.discard(user)
            online.add(user)
            views.room[user] = None     # the session forgets its pairing first
            previous = last_room.get(user) if with_room else None
            before = await store.get(user_key(user))
            avoided = None
            if isinstance(before, UserRecord) and before.room is None and previous is not None \
                    and previous == before.last_room:
                avoided = before.last_partner
            outcome = await mm.request(user, address, user.upper(), "", previous)
            if isinstance(outcome, Pairing):     # no rematch with the partner just left
                partner = outcome.other(user)
                assert partner is not None and partner.user != avoided, (user, avoided)
        elif op == "stop" and user in online:
            views.room[user] = None
            with contextlib.suppress(NotInRoom):
                await mm.stop(user)
        elif op == "leave" and user in online:
            views.room[user] = None
            views.gone.add(user)
            online.discard(user)
            await mm.leave(user)
        for someone in USERS:
            record = await store.get(user_key(someone))
            if isinstance(record, UserRecord) and record.last_room is not None:
                last_room[someone] = record.last_room
        await check(store, views, online)
