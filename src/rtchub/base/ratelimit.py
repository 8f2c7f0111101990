"""Per-key limits (a key is an IP, a socket, a user): fixed-window rates with the clock
passed in, and counts of what a key holds at once."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Concurrent", "FixedWindow", "Window"]


@dataclass(slots=True)
class _Window:
    start: float
    count: int


class FixedWindow:
    """At most ``limit`` hits per ``window`` seconds per key; ``limit`` 0 disables.

    ``hit`` returns None when allowed, else the seconds until the window reopens.
    Old windows are swept lazily so the table stays bounded by active keys.
    """

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._windows: dict[str, _Window] = {}
        self._last_sweep = 0.0

    def hit(self, key: str, now: float) -> float | None:
        """Count one hit for ``key`` at time ``now``."""
        if self.limit <= 0:
            return None
        if now - self._last_sweep > self.window or len(self._windows) > self._max_keys:
            self._sweep(now)
        win = self._windows.get(key)
        if win is None or now - win.start >= self.window:
            self._windows[key] = _Window(now, 1)
            return None
        if win.count >= self.limit:
            return max(win.start + self.window - now, 0.001)
        win.count += 1
        return None

    def check(self, key: str, now: float) -> float | None:
        """Without counting: the seconds until ``key`` may hit again when its window is
        full, else None."""
        win = self._windows.get(key)
        if self.limit <= 0 or win is None or now - win.start >= self.window:
            return None
        if win.count >= self.limit:
            return max(win.start + self.window - now, 0.001)
        return None

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        stale = [k for k, w in self._windows.items() if now - w.start >= self.window]
        for key in stale:
            del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)


class Concurrent:
    """How many things each key holds now, against a ``limit`` (0: unlimited).

    ``full(key)`` asks before admitting; ``add``/``remove`` count what was admitted and
    released (every ``add`` is followed by exactly one ``remove``). Keys at zero are
    forgotten, so the table holds only keys that hold something.
    """

    __slots__ = ("_held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, int] = {}

    def full(self, key: str) -> bool:
        """True when ``key`` already holds ``limit`` things."""
        return self.limit > 0 and self._held.get(key, 0) >= self.limit

    def add(self, key: str) -> None:
        """``key`` holds one more."""
        self._held[key] = self._held.get(key, 0) + 1

    def remove(self, key: str) -> None:
        """``key`` released one."""
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        """How many ``key`` holds now."""
        return self._held.get(key, 0)

    def __len__(self) -> int:
        return len(self._held)


class Window:
    """One key's fixed window (a connection's own budget): at most ``limit`` hits per
    ``window`` seconds; ``limit`` 0 disables. ``hit`` returns None when allowed, else the
    seconds until the window reopens."""

    __slots__ = ("_count", "_start", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._start = float("-inf")
        self._count = 0

    def hit(self, now: float) -> float | None:
        """Count one hit at ``now``."""
        if self.limit <= 0:
            return None
        if now - self._start >= self.window:
            self._start, self._count = now, 1
            return None
        if self._count >= self.limit:
            return max(self._start + self.window - now, 0.001)
        self._count += 1
        return None

    def check(self, now: float) -> float | None:
        """Without counting: the seconds until the window reopens when it is full."""
        if self.limit <= 0 or now - self._start >= self.window or self._count < self.limit:
            return None
        return max(self._start + self.window - now, 0.001)
