"""The clock everything that waits is given: now, timers and sleep, on one time line.

Code that expires, times out or sweeps takes a :class:`Clock` instead of reading the
event loop's clock, so tests drive it with a fake clock in milliseconds
(``tests.support.FakeClock``) instead of waiting in real time. Rules get ``now`` as a
number; services and connections get the clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "LoopClock", "Timer", "WallClock"]


class Timer(Protocol):
    """A scheduled callback that can be cancelled (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None:
        """Do not run the callback (no-op once it ran)."""
        ...


class Clock(Protocol):
    """Monotonic seconds, timers and sleep on one time line."""

    def __call__(self) -> float:
        """Now, in monotonic seconds."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` once ``delay`` seconds from now."""
        ...

    async def sleep(self, delay: float) -> None:
        """Return ``delay`` seconds from now."""
        ...


class LoopClock:
    """The real clock: ``time.monotonic`` (what the event loop uses) and its timers."""

    __slots__ = ()

    def __call__(self) -> float:
        """Now, in monotonic seconds."""
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """An event-loop timer."""
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep(self, delay: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(delay)


class WallClock(LoopClock):
    """Unix time with the event loop's timers: the clock of nodes that share state.

    Several nodes compare the instants they store (a pairing's expiry) with their own
    clocks, and monotonic clocks of different machines share no origin; wall clocks do
    (keep them in step with NTP). Timers still run on the loop's monotonic clock.
    """

    __slots__ = ()

    def __call__(self) -> float:
        """Now, in Unix seconds."""
        return time.time()
