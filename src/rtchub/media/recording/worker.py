"""One recording's file I/O, in order, on one thread, with a bounded backlog.

Muxing a frame usually takes tens of microseconds, but a write can block for as
long as the disk or the page cache's writeback makes it, and opening and
closing a file (a Matroska trailer seeks back and rewrites its header) take
milliseconds (``benchmarks/recording.py`` measures both). None of that may
stall the event loop that forwards everyone's media, so every file operation
of a recording runs on its own thread: jobs queue on the loop and run there in
the order they were submitted, in batches (one hop to the thread per batch,
not per frame). The backlog is bounded in jobs and in bytes: when the disk
cannot keep up, :meth:`FileWorker.submit` refuses frames (the track drops them
and a video track waits for its next key frame) instead of holding media
without limit. Control jobs (open, close, manifest) are never refused.

PyAV releases the GIL while it muxes (``av_interleaved_write_frame``), so the
loop runs on while the thread writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["FileWorker", "JobFailed"]

log = logging.getLogger("rtchub.media")
T = TypeVar("T")

JobFailed = Callable[[str, BaseException], None]


class _Job:
    __slots__ = ("done", "key", "run", "size")

    def __init__(self, key: str, run: Callable[[], Any], size: int,
                 done: asyncio.Future[Any] | None) -> None:
        self.key = key
        self.run = run
        self.size = size
        self.done = done


def _run_batch(batch: list[_Job]) -> list[tuple[Any, BaseException | None]]:
    """On the file thread: run every job, collecting results and failures (one job's
    failure does not stop the others: they may belong to other tracks)."""
    results: list[tuple[Any, BaseException | None]] = []
    for job in batch:
        try:
            results.append((job.run(), None))
        except Exception as exc:
            results.append((None, exc))
    return results


class FileWorker:
    """Runs one recording's file jobs in submission order on a thread of its own."""

    def __init__(self, name: str, max_jobs: int, max_bytes: int, on_failure: JobFailed) -> None:
        if max_jobs < 1 or max_bytes < 1:
            raise ValueError(f"the file backlog needs room for a job, got {max_jobs} jobs and "
                             f"{max_bytes} bytes")
        self._name = name
        self._max_jobs = max_jobs
        self._max_bytes = max_bytes
        self._on_failure = on_failure
        self._jobs: deque[_Job] = deque()
        self._bytes = 0  # queued or running
        self._running_jobs = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self.refused = 0  # frames refused because the backlog was full
        self.batches = 0

    @property
    def backlog(self) -> tuple[int, int]:
        """Jobs and bytes queued or running."""
        return len(self._jobs) + self._running_jobs, self._bytes

    def start(self) -> None:
        """Start the thread and the task that feeds it."""
        if self._task is not None:
            raise RuntimeError(f"{self._name} is already started")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        self._task = asyncio.get_running_loop().create_task(self._feed(), name=self._name)

    def submit(self, key: str, run: Callable[[], object], size: int = 0, *,
               control: bool = False) -> bool:
        """Queue ``run`` for the thread; False (not queued) when the backlog is full.

        ``key`` names the owner (a track) for :data:`JobFailed`. A ``control`` job is
        always queued. A failure goes to ``on_failure`` on the loop.
        """
        if self._closing or self._task is None:
            return False
        if not control and (len(self._jobs) + self._running_jobs >= self._max_jobs
                            or self._bytes + size > self._max_bytes):
            self.refused += 1
            return False
        self._jobs.append(_Job(key, run, size, None))
        self._bytes += size
        self._wakeup.set()
        return True

    async def call(self, key: str, run: Callable[[], T]) -> T:
        """Run ``run`` on the thread after every job queued before it; return its result
        or raise what it raises."""
        if self._closing or self._task is None:
            raise RuntimeError(f"{self._name} is not running")
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(key, run, 0, done))
        self._wakeup.set()
        return await asyncio.shield(done)

    def discard(self, key: str | None = None) -> int:
        """Drop queued jobs that nobody awaits (of ``key``, or all); return how many."""
        kept: deque[_Job] = deque()
        dropped = 0
        for job in self._jobs:
            if job.done is None and (key is None or job.key == key):
                self._bytes -= job.size
                dropped += 1
            else:
                kept.append(job)
        self._jobs = kept
        return dropped

    async def close(self) -> None:
        """Run what is queued, then stop the task and the thread (idempotent)."""
        self._closing = True
        self._wakeup.set()
        task = self._task
        if task is not None:
            await asyncio.shield(task)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)  # its one thread is idle: this only joins it

    async def _feed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = list(self._jobs)
            self._jobs.clear()
            self._running_jobs = len(batch)
            self.batches += 1
            try:
                results = await loop.run_in_executor(self._executor, _run_batch, batch)
            except Exception as gone:  # the thread itself is gone: every job failed with it
                results = [(None, gone)] * len(batch)
            finally:
                self._running_jobs = 0
                self._bytes -= sum(job.size for job in batch)
            for job, (result, failure) in zip(batch, results, strict=True):
                if job.done is not None:
                    if job.done.done():
                        continue
                    if failure is None:
                        job.done.set_result(result)
                    else:
                        job.done.set_exception(failure)
                elif failure is not None:
                    try:
                        self._on_failure(job.key, failure)
                    except Exception:
                        log.exception("%s: handling a failed file job failed", self._name)
