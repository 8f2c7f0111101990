"""Packet loss on either side of the SFU (pure): gaps to NACK, and a test switch.

:class:`MissingTracker` watches the sequence numbers arriving from a publisher
and names the ones that went missing, so the SFU asks the publisher to resend
them (subscribers' NACKs are answered from the SFU's own cache, not here).
:class:`DropEvery` drops a deterministic share of one subscriber's outgoing
packets: the switch tests (and adaptive quality, later) use to inject loss in
the media plane.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DropEvery", "MissingTracker"]

SEQ_MOD: Final = 1 << 16
HALF: Final = SEQ_MOD // 2


class MissingTracker:
    """Names newly missing sequence numbers; forgets those older than ``horizon``."""

    __slots__ = ("_highest", "_horizon", "_max_gap", "missing")

    def __init__(self, horizon: int = 256, max_gap: int = 64) -> None:
        self._highest: int | None = None
        self._horizon = horizon
        self._max_gap = max_gap  # a bigger jump is a restart, not loss
        self.missing: set[int] = set()

    def add(self, seq: int) -> list[int]:
        """Note ``seq`` arrived; return the sequence numbers it shows are missing."""
        highest = self._highest
        if highest is None:
            self._highest = seq
            return []
        ahead = (seq - highest) % SEQ_MOD
        if ahead == 0:
            return []
        if ahead >= HALF:  # late: a retransmission or reordering fills a gap
            self.missing.discard(seq)
            return []
        self._highest = seq
        if ahead > self._max_gap:
            self.missing.clear()
            return []
        lost = [(highest + i) % SEQ_MOD for i in range(1, ahead)]
        self.missing.update(lost)
        if len(self.missing) > self._horizon:
            self.missing = {s for s in self.missing if (seq - s) % SEQ_MOD <= self._horizon}
        return lost


class DropEvery:
    """Drops every ``n``-th packet offered (``n`` >= 2): loss injection for tests."""

    __slots__ = ("_count", "_n", "dropped")

    def __init__(self, n: int) -> None:
        if n < 2:
            raise ValueError(f"drop every n-th packet needs n >= 2, got {n}")
        self._n = n
        self._count = 0
        self.dropped = 0

    def drop(self) -> bool:
        """Whether to drop the next packet."""
        self._count += 1
        if self._count % self._n:
            return False
        self.dropped += 1
        return True
