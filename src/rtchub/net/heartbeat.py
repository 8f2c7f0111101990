"""One periodic sweep over every WebSocket connection, on both stacks.

picows and aiohttp can each ping per connection, but they run a timer or a task for each
(about 2-3 KB and 15 GC-tracked objects per idle connection at 10,000 connections); one
sweep every ``HEARTBEAT`` costs a few milliseconds and nothing per connection. A
connection silent for one period is pinged (through its bounded send path); silent for
another period after the ping, it is closed with 1001.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rtchub.base.clock import Clock

__all__ = ["Beating", "Heartbeat"]


class Beating(Protocol):
    """A connection the sweep looks at (:class:`~rtchub.net.connection.NetConnection`)."""

    def beat(self) -> None:
        """One sweep: ping when silent, close when still silent after the ping."""
        ...


class Heartbeat:
    """The sweep; :meth:`run` is owned by the hub's task owner."""

    def __init__(self, period: float, clock: Clock,
                 changed: Callable[[], None] = lambda: None) -> None:
        self.period = period
        self._clock = clock
        self._changed = changed
        self._conns: set[Beating] = set()
        self.rounds = 0        # sweeps done
        self.waiting = False   # asleep until the next sweep

    def add(self, conn: Beating) -> None:
        """Watch a connection."""
        self._conns.add(conn)

    def discard(self, conn: Beating) -> None:
        """Stop watching a connection."""
        self._conns.discard(conn)

    def sweep(self) -> None:
        """Run one heartbeat round over a snapshot of the connections."""
        for conn in list(self._conns):
            conn.beat()

    async def run(self) -> None:
        """Sweep every ``period`` until cancelled."""
        while True:
            self.waiting = True
            self._changed()
            try:
                await self._clock.sleep(self.period)
            finally:
                self.waiting = False
            self.sweep()
            self.rounds += 1

    def __len__(self) -> int:
        return len(self._conns)
