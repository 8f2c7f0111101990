"""Frames sent to one connection during one turn of the event loop leave in one write.

picows writes each frame with its own ``send()``; on the Socket.IO path one client event
often makes several frames for the same partner in the same turn (an answer and two ICE
candidates; two candidates and ``stop-by-remote-user``), and every system call on
loopback also runs the receiver's TCP path. :class:`TurnBatch` keeps the text frames a
connection is sent until the turn's callbacks are done (``loop.call_soon``, once per turn
for every connection), then each connection writes them at once: one frame through
picows as before, several framed here and written together. A connection's control
frames and its close frame flush what it has staged first, so the order on the wire is
the order of the sends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

__all__ = ["MAX_STAGED", "TurnBatch", "text_frame"]

log = logging.getLogger("rtchub.ws")

# a connection that is sent this many frames in one turn writes them at once (bounds
# what waits in memory for a client on top of its send buffer)
MAX_STAGED: Final = 64


def text_frame(data: bytes) -> bytes:
    """A final, unmasked WebSocket text frame (a server's) carrying ``data``."""
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 0x10000:
        return b"\x81\x7e" + n.to_bytes(2, "big") + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data


class TurnBatch:
    """The connections with frames staged in this turn, flushed when the turn ends.

    ``defer`` schedules a callback for the end of the turn (the loop's ``call_soon``)."""

    __slots__ = ("_defer", "_flushes", "_scheduled")

    def __init__(self, defer: Callable[[Callable[[], None]], object] | None = None) -> None:
        self._defer = defer
        self._flushes: list[Callable[[], None]] = []
        self._scheduled = False

    def add(self, flush: Callable[[], None]) -> None:
        """Call ``flush`` when this turn ends (once per staging connection)."""
        self._flushes.append(flush)
        if not self._scheduled:
            self._scheduled = True
            defer = self._defer
            if defer is None:
                defer = self._defer = asyncio.get_running_loop().call_soon
            defer(self._run)

    def _run(self) -> None:
        self._scheduled = False
        flushes, self._flushes = self._flushes, []
        for flush in flushes:
            try:
                flush()
            except Exception:   # one connection's failure is not the others'
                log.exception("writing a connection's frames failed")
