"""A track's RTP timestamps as strictly increasing ticks of its file's time base.

Pure: the caller passes each frame's SSRC, RTP timestamp and arrival time. The
first frame is tick 0; later ones follow their RTP timestamps (32-bit
wrap-around unfolded, the codec's clock rate converted to the time base), so a
file keeps the sender's own pacing, gaps included. Where RTP time cannot be
trusted (a new SSRC, a timestamp that goes backwards, or one that disagrees
with the arrival clock by more than ``resync_after`` seconds: a sender that
restarted) the timeline continues from the last tick by the arrival time that
passed. Ticks never repeat or go back, as muxers require.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

__all__ = ["Timeline"]

TS_MOD: Final = 1 << 32
_HALF: Final = 1 << 31


class Timeline:
    """Maps one track's frames onto its file's time line."""

    __slots__ = ("_base_ext", "_base_tick", "_clock_rate", "_den", "_last_ext", "_last_now",
                 "_last_tick", "_num", "_resync_after", "_ssrc", "last_seconds", "resyncs")

    def __init__(self, clock_rate: int, time_base: Fraction = Fraction(1, 1000),
                 resync_after: float = 5.0) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        if time_base <= 0:
            raise ValueError(f"time base must be positive, got {time_base}")
        self._clock_rate = clock_rate
        self._num = time_base.numerator
        self._den = time_base.denominator
        self._resync_after = resync_after
        self._ssrc: int | None = None
        self._base_ext = 0
        self._base_tick = 0
        self._last_ext = 0
        self._last_tick = -1
        self._last_now = 0.0
        self.last_seconds = 0.0  # the last frame's media time, unrounded
        self.resyncs = 0

    @property
    def last_tick(self) -> int:
        """The tick of the last frame placed (-1 before the first)."""
        return self._last_tick

    def ticks(self, rtp_units: int) -> int:
        """``rtp_units`` of the clock rate in ticks of the time base, rounded."""
        n = rtp_units * self._den
        d = self._clock_rate * self._num
        return (2 * n + d) // (2 * d)

    def seconds_ticks(self, seconds: float) -> int:
        """``seconds`` in ticks of the time base, rounded."""
        return round(seconds * self._den / self._num)

    def place(self, ssrc: int, timestamp: int, now: float) -> int:
        """The tick of a frame with RTP ``timestamp`` from ``ssrc`` arriving at ``now``."""
        if self._ssrc is None:
            self._ssrc = ssrc
            self._base_ext = self._last_ext = timestamp
            self._base_tick = self._last_tick = 0
            self._last_now = now
            self.last_seconds = 0.0
            return 0
        last_ext = self._last_ext
        ext = last_ext + (timestamp - last_ext + _HALF) % TS_MOD - _HALF
        step = (ext - last_ext) / self._clock_rate
        elapsed = now - self._last_now
        last_tick = self._last_tick
        if ssrc != self._ssrc or step < 0 or abs(step - elapsed) > self._resync_after:
            tick = last_tick + max(1, self.seconds_ticks(max(elapsed, 0.0)))
            self._ssrc = ssrc
            self._base_ext = ext
            self._base_tick = tick
            self.last_seconds = tick * self._num / self._den
            self.resyncs += 1
        else:
            tick = self._base_tick + self.ticks(ext - self._base_ext)
            self.last_seconds = (self._base_tick * self._num / self._den
                                 + (ext - self._base_ext) / self._clock_rate)
            tick = max(tick, last_tick + 1)
        self._last_ext = ext
        self._last_tick = tick
        self._last_now = now
        return tick
