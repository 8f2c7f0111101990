"""A change notifier: code that changes observable state pokes it; waiters re-check.

Tests (and shutdown) wait for a condition on server state without polling:
``await hub.changes.wait_for(lambda: not hub.connections, timeout=5)`` sleeps
until something that could have changed the answer happened. ``notify`` is a
no-op when nobody waits, so hot paths may call it freely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Changes"]


class Changes:
    """Wakes every waiter on each :meth:`notify`."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        """Something changed: wake the waiters so they re-check their condition."""
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        """Return once ``condition()`` holds; raise TimeoutError after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not condition():
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append(fut)
                await fut
