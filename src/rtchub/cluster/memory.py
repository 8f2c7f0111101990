"""The embedded default: all state in process memory, every connection local."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from rtchub.base.connection import Address
from rtchub.cluster.backplane import RemoteHandler, TopicHandler
from rtchub.cluster.store import Mutation

__all__ = ["MemoryBackplane", "MemoryStore"]

R = TypeVar("R")


class MemoryStore:
    """A dict. ``transact`` runs the mutation directly: one event loop, no interleaving."""

    def __init__(self) -> None:
        self._data: dict[str, object] = {}

    async def transact(self, keys: Sequence[str], fn: Mutation[R]) -> R:
        """Apply ``fn`` to the current values of ``keys``."""
        updates, result = fn({k: self._data.get(k) for k in keys})
        for key, value in updates.items():
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value
        return result

    async def get(self, key: str) -> object | None:
        """Read one value."""
        return self._data.get(key)

    def __len__(self) -> int:
        return len(self._data)


class MemoryBackplane:
    """One node: no remote delivery, always healthy."""

    def __init__(self, node_id: str = "local") -> None:
        self._node_id = node_id
        self._store = MemoryStore()

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

    def publish(self, to: Address, event: object) -> None:
        """No other node exists: an address on another node is a bug upstream."""
        raise RuntimeError(f"in-memory backplane cannot reach node {to.node!r}")

    def broadcast(self, topic: str, event: object) -> None:
        """No other node hears it."""

    def on_remote(self, to_conn: RemoteHandler, to_topic: TopicHandler) -> None:
        """Nothing ever arrives from another node."""

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""
