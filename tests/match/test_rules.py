"""The pure matchmaking rules and the Matchmaker over the in-memory store."""

from __future__ import annotations

import pytest

from rtchub.base.connection import Address
from rtchub.cluster.memory import MemoryStore
from rtchub.config import Limits
from rtchub.errors import QueueFull, RateLimited
from rtchub.features.match.events import EVENTS, Matched, Unmatched
from rtchub.features.match.events import MatchEvent as Event
from rtchub.features.match.rules import (
    QUEUE_KEY,
    MatchQueue,
    Pairing,
    Queued,
    Seeker,
    UserRecord,
    avoid_for,
    compatible,
    decide_request,
    pick,
)
from rtchub.features.match.service import Matchmaker


def seeker(user: str, avoid: str | None = None) -> Seeker:
    return Seeker(user, Address("n1", user), user.title(), "", avoid)


class Recorder:
    """A courier that keeps what it was asked to deliver."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Event]] = []

    def deliver(self, to: Address, event: object) -> bool:
        assert isinstance(event, EVENTS)
        self.sent.append((to.conn, event))
        return True


def test_pick_takes_the_oldest_compatible() -> None:
    queue = MatchQueue((seeker("a", avoid="n"), seeker("b"), seeker("c")))
    assert pick(queue, seeker("n")) == seeker("b")          # a avoids n
    assert pick(queue, seeker("m", avoid="a")) == seeker("b")
    assert pick(queue, seeker("m")) == seeker("a", avoid="n")
    assert pick(queue, seeker("a")) == seeker("b")          # never yourself
    assert pick(MatchQueue((seeker("a"),)), seeker("a")) is None


def test_compatible_is_symmetric() -> None:
    a, b = seeker("a", avoid="b"), seeker("b")
    assert not compatible(a, b) and not compatible(b, a)
    assert compatible(seeker("a"), b)


def test_a_pairing_of_one_user_cannot_exist() -> None:
    with pytest.raises(ValueError, match="two different users"):
        Pairing("r", seeker("a"), seeker("a"), 0.0)


def test_avoid_only_for_the_room_just_left() -> None:
    record = UserRecord(None, "room1", "bob")
    assert avoid_for(record, "room1") == "bob"
    assert avoid_for(record, "room2") is None
    assert avoid_for(record, None) is None


def test_queue_limit_and_keeping_your_place() -> None:
    values = {QUEUE_KEY: MatchQueue((seeker("a", avoid="b"), seeker("c", avoid="b")))}
    with pytest.raises(QueueFull):
        decide_request(values, seeker("b", avoid="a"), "r", None, 2)
    standing = {QUEUE_KEY: MatchQueue((seeker("a", avoid="c"), seeker("c", avoid="a")))}
    updates, outcome = decide_request(standing, seeker("c", avoid="a"), "r", None, 2)
    assert outcome == Queued(1)
    assert updates[QUEUE_KEY] == standing[QUEUE_KEY]


async def test_matchmaker_pairs_ends_and_leaves() -> None:
    store, courier = MemoryStore(lambda: 0.0), Recorder()
    ids = iter(["r1", "r2", "r3"])
    mm = Matchmaker(store, courier, Limits(), clock=lambda: 0.0, room_ids=lambda: next(ids))
    assert await mm.request("a", Address("n1", "a"), "Ann", "", None) == Queued(0)
    pairing = await mm.request("b", Address("n1", "b"), "Bob", "", None)
    # a room ID is made only for a pairing: waiting in the queue takes none
    assert isinstance(pairing, Pairing) and pairing.id == "r1"
    assert [(to, type(e)) for to, e in courier.sent] == [("a", Matched), ("b", Matched)]
    courier.sent.clear()
    await mm.leave("a")
    assert courier.sent == [("b", Unmatched("r1", "a"))]
    status = await mm.status()
    assert (status.queue_size, status.rooms_active, status.rooms_total) == (0, 0, 1)
    assert len(store) == 2      # only b's record (last room) and the counts remain


async def test_rate_limits_use_the_injected_clock() -> None:
    now = [0.0]
    mm = Matchmaker(MemoryStore(lambda: now[0]), Recorder(), Limits(match_request_rate=(1, 5.0)),
                    clock=lambda: now[0])
    await mm.check_request_rate("a")
    with pytest.raises(RateLimited) as info:
        await mm.check_request_rate("a")
    assert info.value.retry_after == 5.0
    await mm.check_request_rate("b")
    now[0] = 5.0
    await mm.check_request_rate("a")
