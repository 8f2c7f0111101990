"""Putting one RTP source's packets back in sequence order, within a small window.

Pure: the caller passes each packet's sequence number and its arrival time.
Packets come out in sequence order, each with the number of packets given up
as lost just before it. A gap is waited for until ``window`` packets are held
behind it or the oldest of them has waited ``max_delay`` seconds; then the
missing packets are declared lost (when the next packet arrives: there is no
timer). The start of a stream is such a gap too: which packet is first is
decided once the window fills or the delay passes, so a stream whose first
packets arrive out of order is not cut. Late packets (behind what was already
released) and duplicates are dropped. A jump far outside the window in either
direction (a sender that restarted its sequence numbers) is a new start, with
one packet counted lost for the discontinuity, not thousands lost or late.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

__all__ = ["Reorderer"]

T = TypeVar("T")

SEQ_MOD: Final = 1 << 16
_HALF: Final = 1 << 15


class Reorderer(Generic[T]):
    """Sequence-orders one source's items; memory is bounded by ``window`` items."""

    __slots__ = ("_buffer", "_carry", "_highest", "_max_delay", "_next", "_restart", "_since",
                 "_window", "duplicates", "late", "lost")

    def __init__(self, window: int, max_delay: float) -> None:
        if window < 1:
            raise ValueError(f"the reorder window must hold at least one packet, got {window}")
        if max_delay < 0:
            raise ValueError(f"the reorder delay cannot be negative, got {max_delay}")
        self._window = window
        self._max_delay = max_delay
        self._restart = max(4 * window, 1024)  # a jump this far is a new start
        self._buffer: dict[int, T] = {}
        self._next: int | None = None  # the extended sequence number due; None: not started
        self._highest = 0
        self._since = 0.0  # when the oldest held packet arrived
        self._carry = 0  # lost packets to report with the next one released
        self.lost = 0
        self.late = 0
        self.duplicates = 0

    @property
    def held(self) -> int:
        """Packets waiting behind a gap."""
        return len(self._buffer)

    def push(self, seq: int, item: T, now: float) -> list[tuple[int, T]]:
        """Take one packet; return ``(lost_before, item)`` for every packet now in order."""
        buffer = self._buffer
        if self._next is None and not buffer:
            self._highest = seq
        ext = self._highest + (seq - self._highest + _HALF) % SEQ_MOD - _HALF
        expected = self._next
        released: list[tuple[int, T]] = []
        if expected is not None and not -self._restart <= ext - expected <= self._restart:
            released = self.flush()  # a restart: what was held goes out first
            self._carry = 1
            self.lost += 1
            self._highest = ext
            expected = None
        elif expected is not None and ext < expected:
            self.late += 1
            return released
        if ext in buffer:
            self.duplicates += 1
            return released
        self._highest = max(self._highest, ext)
        if not buffer:
            self._since = now
        buffer[ext] = item
        if expected is None:  # the start: wait for the window to tell which packet is first
            if len(buffer) <= self._window and now - self._since < self._max_delay:
                return released
            expected = min(buffer)
        lost = self._carry
        moved = False
        while buffer:
            held = buffer.pop(expected, None)
            if held is not None:
                released.append((lost, held))
                lost = 0
                expected += 1
                moved = True
                continue
            if moved:  # a new gap: its wait starts now
                self._since = now
                moved = False
            if len(buffer) <= self._window and now - self._since < self._max_delay:
                break
            resume = min(buffer)  # give up on the gap
            lost += resume - expected
            self.lost += resume - expected
            expected = resume
            self._since = now
        self._carry = lost
        self._next = expected
        return released

    def flush(self) -> list[tuple[int, T]]:
        """Release everything held, in order, counting the gaps as lost; then start over."""
        released: list[tuple[int, T]] = []
        expected = self._next
        lost = self._carry
        for ext in sorted(self._buffer):
            if expected is not None:
                lost += ext - expected
                self.lost += ext - expected
            released.append((lost, self._buffer[ext]))
            lost = 0
            expected = ext + 1
        self._buffer.clear()
        self._next = None
        self._carry = 0
        return released
