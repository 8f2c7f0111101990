"""Ownership of background tasks: every task has an owner that cancels and awaits it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["TaskOwner"]

T = TypeVar("T")
log = logging.getLogger("rtchub")


class TaskOwner:
    """Keeps references to the tasks it starts, logs their failures, cancels them on close."""

    def __init__(self, name: str, on_done: Callable[[], None] | None = None) -> None:
        self._name = name
        self._on_done = on_done
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Start ``coro`` as a task owned here."""
        if self._closing:
            coro.close()
            raise RuntimeError(f"{self._name} is closing; no new tasks")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._on_done is not None:
            self._on_done()
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s of %s failed", task.get_name(), self._name,
                      exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every task and wait for them to finish."""
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
