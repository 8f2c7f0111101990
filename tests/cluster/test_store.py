"""The store contract, run against the in-memory store and the Redis store (a real
redis-server): the same semantics whichever backplane the factory chose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import pytest
import pytest_asyncio

from rtchub.base.clock import LoopClock
from rtchub.base.connection import Address
from rtchub.cluster.backplane import Backplane
from rtchub.cluster.codec import Codec, CodecError
from rtchub.cluster.memory import MemoryBackplane
from rtchub.cluster.placement import RECORDS as PLACEMENT_RECORDS
from rtchub.cluster.placement import Placed, Placement
from rtchub.cluster.redis_backplane import RedisBackplane
from rtchub.cluster.store import Expiring
from rtchub.features.pairing.rules import Chain, chain_items, chain_of_items
from rtchub.features.rooms.rules import RECORDS, MemberRecord, RoomRecord
from tests.cluster.redis import redis_server
from tests.support import FakeClock

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass(frozen=True, slots=True)
class Box:
    """A record of the test."""

    n: int


def codec() -> Codec:
    made = Codec()
    made.register(Box, *RECORDS, *PLACEMENT_RECORDS)
    made.register_flat(Chain, list[str], chain_items, chain_of_items)
    return made


class Seen:
    """A follower that keeps what it was told."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.order: list[tuple[str, object | None]] = []

    def changed(self, key: str, value: object | None) -> None:
        self.order.append((key, value))
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    def reset(self, items: Mapping[str, object]) -> None:
        self.values = dict(items)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest_asyncio.fixture(loop_scope="module", params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest, redis_url: str
               ) -> AsyncIterator[tuple[Backplane, Backplane, Seen]]:
    """Two backplanes on one store (in memory: the same one twice), the first followed."""
    seen = Seen()
    if request.param == "memory":
        one = MemoryBackplane(FakeClock())
        one.store.follow("box:", seen)
        yield one, one, seen
        return
    prefix = f"t{id(seen)}"
    # the real clock: conflicting transactions pause (jittered) before they retry
    made = [RedisBackplane(redis_url, codec(), LoopClock(), f"n{i}", prefix=prefix)
            for i in range(2)]
    made[0].store.follow("box:", seen)
    made[1].store.follow("box:", Seen())   # every node runs the same features: same feeds
    for backplane in made:
        await backplane.start()
        assert backplane.healthy
    try:
        yield made[0], made[1], seen
    finally:
        for backplane in made:
            await backplane.close()


def add(key: str, n: int = 1):  # type: ignore[no-untyped-def]
    def mutate(values: Mapping[str, object | None]
               ) -> tuple[Mapping[str, object | None], int]:
        current = values.get(key)
        total = (current.n if isinstance(current, Box) else 0) + n
        return {key: Box(total)}, total
    return mutate


async def test_transactions_from_two_nodes_lose_no_update(
        pair: tuple[Backplane, Backplane, Seen]) -> None:
    one, two, seen = pair
    results = await asyncio.gather(*(b.store.transact(["box:a"], add("box:a"))
                                     for b in (one, two) * 20))
    assert sorted(results) == list(range(1, 41))
    assert await two.store.get("box:a") == Box(40)
    # the feed told the follower every commit, in commit order, before transact returned
    assert [v for k, v in seen.order if k == "box:a"] == [Box(i) for i in range(1, 41)]
    assert seen.values["box:a"] == Box(40)
    with pytest.raises(ValueError, match="did not read"):
        await one.store.transact(["box:a"], lambda v: ({"box:b": Box(1)}, None))
    assert (await one.store.scan("box:")) == {"box:a": Box(40)}
    await one.store.transact(["box:a"], lambda v: ({"box:a": None}, None))
    assert "box:a" not in seen.values and await two.store.get("box:a") is None


async def test_counters_and_windows_are_atomic(pair: tuple[Backplane, Backplane, Seen]) -> None:
    one, two, _ = pair
    got = await asyncio.gather(*(b.store.count("c:rooms", 1, 5) for b in (one, two) * 4))
    assert sorted(g for g in got if g is not None) == [1, 2, 3, 4, 5]
    assert got.count(None) == 3
    assert await one.store.count("c:rooms", -7) == 0        # never below zero
    hits = [await b.store.hit("rl:x", 60.0) for b in (one, two, one)]
    assert [h for h, _ in hits] == [1, 2, 3]
    assert all(0 < left <= 60.0 for _, left in hits)
    assert (await two.store.hit("rl:x", 60.0, 0))[0] == 3   # a read counts nothing
    assert await one.store.hit("rl:unknown", 60.0, 0) == (0, 0.0)


async def test_expiring_values_and_placement(pair: tuple[Backplane, Backplane, Seen]) -> None:
    one, two, _ = pair
    await one.store.transact(["box:e"], lambda v: ({"box:e": Expiring(Box(1), 30.0)}, None))
    assert await two.store.get("box:e") == Box(1)
    # placement: the first claim wins everywhere; a lost owner's rooms are placed again
    first = Placement(one.store, "n0", "sfu", "https://n0.example")
    second = Placement(two.store, "n1", "sfu")
    assert await second.claim("room") == Placed("n1", "")
    assert await first.claim("room") == Placed("n1", "")
    await first.sweep_node("n1", lambda a: False)
    assert await first.claim("room") == Placed("n0", "https://n0.example")
    await second.release("room")            # not its room any more: nothing happens
    assert await second.claim("room") == Placed("n0", "https://n0.example")
    await first.release("room")
    assert (await second.claim("room")).node == "n1"


@pytest.mark.asyncio(loop_scope="module")
async def test_the_codec_refuses_what_is_not_registered() -> None:
    made = codec()
    room = RoomRecord("r", (MemberRecord("a", Address("n", "c"), "h"),))
    assert made.decode(made.encode(room)) == room
    assert made.decode(made.encode(frozenset({"x"}))) == frozenset({"x"})
    with pytest.raises(CodecError):
        made.encode(object())
    with pytest.raises(CodecError):
        made.decode(Codec().encode(7)[:2])
    stranger = Codec()
    stranger.register(Box)
    with pytest.raises(CodecError):
        codec_without_box = Codec()
        codec_without_box.decode(stranger.encode(Box(1)))


async def test_a_long_chain_is_stored_flat(pair: tuple[Backplane, Backplane, Seen]) -> None:
    """Pairing's appID list is a linked chain: 5,000 links deep, it still round-trips (a
    nested encoding passes Python's recursion limit at about 1,000)."""
    one, two, _ = pair
    chain = Chain.of([f"app{i}" for i in range(5000)])

    def put(_: Mapping[str, object | None]) -> tuple[Mapping[str, object | None], None]:
        return {"box:chain": chain}, None

    await one.store.transact(["box:chain"], put)
    back = await two.store.get("box:chain")
    assert isinstance(back, Chain) and list(back) == [f"app{i}" for i in range(5000)]
