"""A one-line progress bar on stderr: bytes done, size, rate and ETA."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "human_bytes"]


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


class Progress:
    """Redraws at most ``fps`` times a second; :meth:`finish` prints the final line."""

    def __init__(self, total: int | None, label: str, out: TextIO = sys.stderr, fps: float = 8.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = 0
        self._label = label
        self._out = out
        self._clock = clock
        self._start = clock()
        self._interval = 1.0 / fps
        self._last = 0.0
        self._tty = out.isatty()

    def update(self, n: int) -> None:
        """Count ``n`` more bytes."""
        self.set(self.done + n)

    def set(self, done: int) -> None:
        """``done`` bytes so far."""
        self.done = done
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._draw(now, end="\r" if self._tty else "\n")

    def rate(self) -> float:
        """Bytes per second so far."""
        return self.done / max(self._clock() - self._start, 1e-6)

    def _draw(self, now: float, end: str) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed
        if self.total is None:  # a stream of unknown length
            self._out.write(f"{self._label} {human_bytes(self.done)} {human_bytes(rate)}/s "
                            f"{elapsed:4.0f}s{end}")
            self._out.flush()
            return
        frac = self.done / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        self._out.write(f"{self._label} [{bar}] {frac * 100:5.1f}% "
                        f"{human_bytes(self.done)}/{human_bytes(self.total)} "
                        f"{human_bytes(rate)}/s ETA {eta:4.0f}s{end}")
        self._out.flush()

    def finish(self) -> None:
        """Draw the final state on its own line."""
        self._draw(self._clock(), end="\n")
