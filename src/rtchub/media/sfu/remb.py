"""Combining subscribers' bandwidth estimates into what a publisher may send (pure).

Every subscriber of a published video track reports, through REMB, how much it
can receive; the publisher is told the least of those (it cannot send a
different stream to each without simulcast), never more than the configured
maximum and never less than the minimum. With nobody's estimate at hand (no
subscriber yet, or all silent for ``stale_after`` seconds) the maximum holds.
A publisher with several video tracks is told their sum: browsers treat a REMB
as one budget for the whole connection.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["BitrateEstimates", "publisher_budget"]

K = TypeVar("K", bound=Hashable)


class BitrateEstimates(Generic[K]):
    """The latest estimate of each subscriber of one track, and when it came."""

    __slots__ = ("_latest",)

    def __init__(self) -> None:
        self._latest: dict[K, tuple[int, float]] = {}

    def update(self, subscriber: K, bitrate: int, now: float) -> None:
        """Record ``subscriber``'s estimate (bits/s) at ``now``."""
        self._latest[subscriber] = (max(0, bitrate), now)

    def remove(self, subscriber: K) -> None:
        """Forget a subscriber that left."""
        self._latest.pop(subscriber, None)

    def latest(self, subscriber: K) -> tuple[int, float] | None:
        """``subscriber``'s latest estimate and when it came, or None."""
        return self._latest.get(subscriber)

    def fresh(self, now: float, stale_after: float) -> list[int]:
        """The estimates not older than ``stale_after`` seconds."""
        return [rate for rate, when in self._latest.values() if now - when <= stale_after]

    def target(self, now: float, floor: int, cap: int, stale_after: float) -> int:
        """What the publisher may send for this track: the least fresh estimate,
        within ``[floor, cap]``; ``cap`` when there is none."""
        rates = self.fresh(now, stale_after)
        if not rates:
            return cap
        return max(floor, min(cap, *rates))


def publisher_budget(targets: Iterable[int]) -> int:
    """One REMB for a publisher's connection: the sum of its video tracks' targets."""
    return sum(targets)
