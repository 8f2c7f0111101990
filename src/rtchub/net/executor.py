"""One connection's operations, applied one at a time in arrival order, behind one error
boundary. Every dialect uses it: the WebSocket dialects through
:class:`~rtchub.net.session.Session`, Socket.IO matchmaking directly.

An operation is a call ``fn(a, b)`` that either finishes at once (returns None: the hot
path, no task, no await) or returns an awaitable for work that must finish before the
next operation starts (a join, an SDP answer). While one is in flight, later operations
wait in a queue of at most ``limit``; more get ``queue_full``. A failure of any operation
becomes an error for the client (``on_error(err, a)``: ``a`` is the operation's first
argument, so a dialect can say which message failed) and never reaches the transport.

When the connection closes, nothing new is accepted; what the client sent before it
closed is still applied in order (a mailbox message written just before the close is not
lost), and then the final step (the dialects' release) runs exactly once. That order is
what keeps a join that completes after its socket closed from leaving a ghost member.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from rtchub.errors import QueueFull, RtcHubError, ServerError

__all__ = ["OnError", "Op", "SerialExecutor", "Spawn"]

log = logging.getLogger("rtchub.ws")

# fn(a, b) -> None when done at once, else an awaitable that finishes the operation
Op = Callable[[Any, Any], Awaitable[None] | None]
# starts a coroutine as an owned task; raises RuntimeError while shutting down
Spawn = Callable[[Coroutine[Any, Any, None]], object]
# (the error, the failed operation's first argument) -> tell the client
OnError = Callable[[RtcHubError, Any], None]


class SerialExecutor:
    """Runs one connection's operations in order; see the module docstring."""

    __slots__ = ("_busy", "_closed", "_final", "_finished", "_limit", "_name", "_on_error",
                 "_queue", "_spawn")

    def __init__(self, spawn: Spawn, on_error: OnError, limit: int, name: str) -> None:
        self._spawn = spawn
        self._on_error = on_error
        self._limit = limit
        self._name = name
        self._busy = False
        self._closed = False
        self._finished = False
        self._queue: deque[tuple[Op, Any, Any]] | None = None  # made when first needed
        self._final: Callable[[], Awaitable[None] | None] | None = None

    @property
    def busy(self) -> bool:
        """True while an operation is in flight."""
        return self._busy

    @property
    def queued(self) -> int:
        """Operations waiting behind the one in flight."""
        return len(self._queue) if self._queue else 0

    def submit(self, fn: Op, a: Any, b: Any) -> None:
        """Run ``fn(a, b)`` now, or after the operations before it."""
        if self._closed:
            return
        if self._busy:
            queue = self._queue
            if queue is None:
                queue = self._queue = deque()
            if len(queue) >= self._limit:
                self._on_error(QueueFull(f"more than {self._limit} messages sent while an "
                                         "earlier one is still being processed"), a)
                return
            queue.append((fn, a, b))
            return
        try:
            work = fn(a, b)
        except RtcHubError as err:
            self._on_error(err, a)
            return
        except Exception as exc:
            self._failed(exc, a)
            return
        if work is not None:
            self._busy = True
            self._start(self._drain(work, a))

    def close(self, final: Callable[[], Awaitable[None] | None]) -> None:
        """Accept nothing more; run ``final`` once what was submitted before is done."""
        if self._closed:
            return
        self._closed = True
        self._final = final
        if not self._busy:
            self._finish_now()

    async def _drain(self, work: Awaitable[None], first: Any) -> None:
        try:
            await self._guard(work, first)
            while self._queue:
                fn, a, b = self._queue.popleft()
                try:
                    more = fn(a, b)
                except RtcHubError as err:
                    self._on_error(err, a)
                    continue
                except Exception as exc:
                    self._failed(exc, a)
                    continue
                if more is not None:
                    await self._guard(more, a)
        finally:
            self._busy = False
            self._queue = None     # (a deque is 760 bytes: idle connections hold none)
            if self._closed:
                self._finish_now()

    async def _guard(self, work: Awaitable[None], a: Any) -> None:
        try:
            await work
        except RtcHubError as err:
            self._on_error(err, a)
        except Exception as exc:
            self._failed(exc, a)

    def _finish_now(self) -> None:
        if self._finished or self._final is None:
            return
        self._finished = True
        final, self._final = self._final, None
        try:
            work = final()
        except Exception:
            log.exception("releasing connection %s failed", self._name)
            return
        if work is not None:
            self._start(self._guard_final(work))

    async def _guard_final(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            log.exception("releasing connection %s failed", self._name)

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            self._spawn(coro)
        except RuntimeError:  # shutting down: the work goes with the process
            coro.close()
            self._busy = False

    def _failed(self, exc: Exception, a: Any) -> None:
        log.error("operation failed on %s", self._name, exc_info=exc)
        self._on_error(ServerError(f"Server error: {type(exc).__name__}"), a)
