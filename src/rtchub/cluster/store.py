"""The state store protocol: atomic read-modify-write over a few keys, counters, a change
feed.

The core keeps its rules in pure functions and hands them to
:meth:`StateStore.transact`, which applies one atomically: the in-memory store simply
calls it; the Redis store reads with WATCH, calls it, writes with MULTI/EXEC and retries
on conflict (so ``fn`` must be pure: it may run more than once). Values are immutable
objects (frozen dataclasses, tuples, ints), so a store may hand out references safely.

Besides transactions a store offers what transactions are bad at: counters that many
nodes bump at once (:meth:`StateStore.count`, :meth:`StateStore.hit`: one atomic step,
never a retry), a read of every key under a prefix (:meth:`StateStore.scan`, for sweeps),
and a change feed (:meth:`StateStore.follow`): every committed write under a prefix is
reported to a :class:`Follower` on every node, in commit order, and before the
``transact`` that made it returns on the node that made it. A service keeps a node-local
view of shared state that way (rooms' relay view, voice's stream directory).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = ["Expiring", "Follower", "Mutation", "StateStore"]

R = TypeVar("R")

# fn(current values by key, None when absent) -> (new values by key, None deletes; result)
Mutation = Callable[[Mapping[str, object | None]], tuple[Mapping[str, object | None], R]]


@dataclass(frozen=True, slots=True)
class Expiring:
    """An update whose value the store forgets ``ttl`` seconds after the write (Redis: the
    key's expiry). Written as the value of a key in a mutation's updates."""

    value: object
    ttl: float

    def __post_init__(self) -> None:
        if self.ttl <= 0:
            raise ValueError(f"an expiring value needs a positive ttl, got {self.ttl}")


class Follower(Protocol):
    """Told about every committed change under the prefix it follows."""

    def changed(self, key: str, value: object | None) -> None:
        """``key`` now holds ``value`` (None: deleted). Never raises."""
        ...

    def reset(self, items: Mapping[str, object]) -> None:
        """Everything under the prefix is now ``items`` (after a start or a reconnect:
        changes may have been missed). Never raises."""
        ...


class StateStore(Protocol):
    """Shared state: the in-memory default or a Redis implementation."""

    async def transact(self, keys: Sequence[str], fn: Mutation[R]) -> R:
        """Apply ``fn`` to the current values of ``keys`` atomically; return its result.

        ``fn`` may update only ``keys``; an update may be an :class:`Expiring` value.
        """
        ...

    async def get(self, key: str) -> object | None:
        """Read one value (None when absent)."""
        ...

    async def scan(self, prefix: str) -> dict[str, object]:
        """Every key under ``prefix`` and its value (not a snapshot: a sweep's read)."""
        ...

    async def count(self, key: str, delta: int, ceiling: int | None = None) -> int | None:
        """Add ``delta`` to the counter ``key`` atomically and return the new value; None
        (and no change) when the result would pass ``ceiling``. A counter never goes
        below 0."""
        ...

    async def hit(self, key: str, window: float, hits: int = 1) -> tuple[int, float]:
        """Count ``hits`` in ``key``'s fixed window (opened by the first hit, ``window``
        seconds long); returns (hits in the window, seconds until it closes). ``hits``
        0 only reads."""
        ...

    def follow(self, prefix: str, follower: Follower) -> None:
        """Report every committed change under ``prefix`` to ``follower`` (see the module
        docstring). Followed keys should not expire: expiry is not reported."""
        ...
