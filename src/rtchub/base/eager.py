"""Run a coroutine at once up to its first real suspension (Python 3.12's eager tasks).

A feature's operation returns an awaitable for work that must finish before the
connection's next operation (:class:`~rtchub.net.executor.SerialExecutor`); the executor
gives it a task. Matchmaking's requests over the in-memory store never suspend: started
here they finish inside the call that made them, with no task and no turn of the event
loop for the user, and only work that does suspend (a Redis round trip) gets a task for
the rest. Only for work known never to need a task before its first suspension: code
that reads the current task (``asyncio.timeout()``, as the Redis client does) must run in
one, so the caller decides (the in-memory store says so with ``immediate``).
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

__all__ = ["eager"]


def eager(work: Awaitable[None]) -> Awaitable[None] | None:
    """Run the coroutine ``work`` until it finishes (None; its exception raised here) or
    suspends (an awaitable for the rest, to be awaited exactly once). Any other awaitable
    is returned as it is."""
    if type(work) is not types.CoroutineType:
        return work
    coro: Coroutine[Any, Any, None] = work
    try:
        pending = coro.send(None)
    except StopIteration:
        return None
    return _rest(coro, pending)


@types.coroutine
def _rest(coro: Coroutine[Any, Any, None], pending: Any) -> Generator[Any, Any, None]:
    """The rest of a coroutine :func:`eager` started that suspended on ``pending``: hands
    what it waits for to the awaiting task, and the task's answers (a value, an exception
    such as its cancellation) back to the coroutine."""
    while True:
        try:
            value = yield pending
        except BaseException as exc:
            try:
                pending = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                pending = coro.send(value)
            except StopIteration:
                return
