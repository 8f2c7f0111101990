"""The state store protocol: atomic read-modify-write over a few keys.

The core keeps its rules in pure functions and hands them to
:meth:`StateStore.transact`, which applies one atomically: the in-memory store
simply calls it; a Redis store reads with WATCH, calls it, writes with
MULTI/EXEC and retries on conflict. Values are immutable objects (frozen
dataclasses, tuples, ints), so a store may hand out references safely.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

__all__ = ["Mutation", "StateStore"]

R = TypeVar("R")

# fn(current values by key, None when absent) -> (new values by key, None deletes; result)
Mutation = Callable[[Mapping[str, object | None]], tuple[Mapping[str, object | None], R]]


class StateStore(Protocol):
    """Shared state: the in-memory default or a Redis implementation."""

    async def transact(self, keys: Sequence[str], fn: Mutation[R]) -> R:
        """Apply ``fn`` to the current values of ``keys`` atomically; return its result."""
        ...

    async def get(self, key: str) -> object | None:
        """Read one value (None when absent)."""
        ...
