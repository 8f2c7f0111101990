"""The embedded default: all state in process memory, every connection local."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from rtchub.base.connection import Address
from rtchub.cluster.backplane import (
    ClusterView,
    NodeFigures,
    NodeSweep,
    RemoteHandler,
    TopicHandler,
)
from rtchub.cluster.store import Expiring, Follower, Mutation

__all__ = ["MemoryBackplane", "MemoryStore"]

R = TypeVar("R")


class MemoryStore:
    """A dict. ``transact`` runs the mutation directly: one event loop, no interleaving.

    ``clock`` (seconds) drives expiring values and rate windows.
    """

    # its coroutines finish on their first step and never need a task of their own, so a
    # caller may run work over it eagerly (rtchub.base.eager); a store without this
    # attribute may suspend, or use asyncio.timeout(), which needs the current task
    immediate = True

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._data: dict[str, object] = {}
        self._expiry: dict[str, float] = {}
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (hits, closes at)
        self._followers: list[tuple[str, Follower]] = []

    def _read(self, key: str) -> object | None:
        at = self._expiry.get(key)
        if at is not None and at <= self._clock():
            del self._expiry[key]
            self._data.pop(key, None)
        return self._data.get(key)

    async def transact(self, keys: Sequence[str], fn: Mutation[R]) -> R:
        """Apply ``fn`` to the current values of ``keys``."""
        updates, result = fn({k: self._read(k) for k in keys})
        for key, update in updates.items():
            if key not in keys:
                raise ValueError(f"a mutation updated {key!r}, which it did not read")
            self._expiry.pop(key, None)
            value = update
            if isinstance(update, Expiring):
                self._expiry[key] = self._clock() + update.ttl
                value = update.value
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value
        if self._followers and updates:
            for key, value in updates.items():
                plain = value.value if isinstance(value, Expiring) else value
                for prefix, follower in self._followers:
                    if key.startswith(prefix):
                        follower.changed(key, plain)
        return result

    async def get(self, key: str) -> object | None:
        """Read one value."""
        return self._read(key)

    async def scan(self, prefix: str) -> dict[str, object]:
        """Every live key under ``prefix``."""
        found = {}
        for key in [k for k in self._data if k.startswith(prefix)]:
            value = self._read(key)
            if value is not None:
                found[key] = value
        return found

    async def count(self, key: str, delta: int, ceiling: int | None = None) -> int | None:
        """Add to a counter, refusing past ``ceiling``; never below 0."""
        current = self._data.get(key)
        value = max((current if isinstance(current, int) else 0) + delta, 0)
        if ceiling is not None and delta > 0 and value > ceiling:
            return None
        self._data[key] = value
        return value

    async def hit(self, key: str, window: float, hits: int = 1) -> tuple[int, float]:
        """Count hits in a fixed window."""
        now = self._clock()
        count, closes = self._windows.get(key, (0, -math.inf))
        if closes <= now:
            if hits == 0:
                self._windows.pop(key, None)
                return 0, 0.0
            count, closes = 0, now + window
            if len(self._windows) > 10_000:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        count += hits
        self._windows[key] = (count, closes)
        return count, closes - now

    def follow(self, prefix: str, follower: Follower) -> None:
        """Report committed changes under ``prefix`` synchronously, inside ``transact``."""
        self._followers.append((prefix, follower))
        follower.reset({k: v for k, v in self._data.items() if k.startswith(prefix)})

    def __len__(self) -> int:
        return len(self._data)


class MemoryBackplane:
    """One node: no remote delivery, always healthy, never loses a node."""

    def __init__(self, clock: Callable[[], float], node_id: str = "local") -> None:
        self._node_id = node_id
        self._store = MemoryStore(clock)
        self._figures: Callable[[], NodeFigures] = dict

    @property
    def node_id(self) -> str:
        """This node's ID."""
        return self._node_id

    @property
    def store(self) -> MemoryStore:
        """The in-memory store."""
        return self._store

    @property
    def healthy(self) -> bool:
        """Always True."""
        return True

    def publish(self, to: Address, event: object) -> bool:
        """No other node exists: an address on another node is a bug upstream."""
        raise RuntimeError(f"in-memory backplane cannot reach node {to.node!r}")

    def broadcast(self, topic: str, event: object) -> None:
        """No other node hears it."""

    def listen(self, topic: str) -> None:
        """No other node broadcasts."""

    def unlisten(self, topic: str) -> None:
        """No other node broadcasts."""

    def on_remote(self, to_conn: RemoteHandler, to_topic: TopicHandler,
                  local: Callable[[str], bool]) -> None:
        """Nothing ever arrives from another node."""

    def on_sweep(self, sweep: NodeSweep) -> None:
        """No node is ever lost."""

    def set_figures(self, read: Callable[[], NodeFigures]) -> None:
        """How to read this node's figures."""
        self._figures = read

    def cluster(self) -> ClusterView:
        """Just this node."""
        return ClusterView(self._node_id, ((self._node_id, self._figures()),), True)

    def counters(self) -> dict[str, float]:
        """None: nothing crosses nodes."""
        return {}

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""
