"""Benchmark-only probe of an ``rtchub serve`` process: collector passes and loop lag.

Loaded by Python itself when this folder is on ``PYTHONPATH`` (a ``sitecustomize``), so
rtchub carries no cost and no setting for it; ``run.py`` runs it as a variant::

    .venv/bin/python benchmarks/match/run.py --pin --servers probe,node --json /tmp/r.json \
        --variant probe:PYTHONPATH=benchmarks/match/probe,PROBE_OUT=/tmp/probe.json

With ``PROBE_OUT`` set, in a process whose arguments include ``serve``, it records every
collection (start on the monotonic clock, generation, wall ms, objects collected, CPU ms
of the collecting thread, and for a full pass the objects tracked after it) and every turn
of the event loop that came more than 5 ms late (a 1 ms timer: start, ms late), and
writes them as JSON to ``PROBE_OUT`` at exit or on SIGUSR1. ``run.py --json`` gives each
phase's ``window`` on the same clock, and its slow samples' request times in ms since the
epoch (``epoch_minus_perf`` converts).
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Coroutine
from typing import Any

_LATE = 0.005      # a turn this late is recorded (s)
_TICK = 0.001      # the lag timer's period (s)


class _Probe:
    def __init__(self, out: str) -> None:
        self.out = out
        self.gcs: list[tuple[float, int, float, int, float, int]] = []
        self.lags: list[tuple[float, float]] = []
        self._wall = 0.0
        self._cpu = 0.0
        self._tick = time.perf_counter()

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._wall = time.perf_counter()
            self._cpu = time.thread_time()
            return
        generation = int(info["generation"])
        tracked = len(gc.get_objects()) if generation == 2 else -1
        self.gcs.append((round(self._wall, 3), generation,
                         round((time.perf_counter() - self._wall) * 1e3, 3),
                         int(info["collected"]),
                         round((time.thread_time() - self._cpu) * 1e3, 3), tracked))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._tick = time.perf_counter()

        def beat() -> None:
            now = time.perf_counter()
            late = now - self._tick - _TICK
            if late > _LATE:
                self.lags.append((round(self._tick, 3), round(late * 1e3, 2)))
            self._tick = now
            loop.call_later(_TICK, beat)

        loop.call_soon(beat)

    def dump(self, *_: object) -> None:
        with open(self.out, "w") as f:
            json.dump({"epoch_minus_perf": time.time() - time.perf_counter(),
                       "gc": self.gcs, "lags": self.lags}, f)


def _install(out: str) -> None:
    import uvloop

    probe = _Probe(out)
    gc.callbacks.append(probe.on_gc)
    atexit.register(probe.dump)
    signal.signal(signal.SIGUSR1, probe.dump)
    run = uvloop.run

    def probed_run(main: Coroutine[Any, Any, Any], **kw: Any) -> Any:
        async def wrapped() -> Any:
            probe.start(asyncio.get_running_loop())
            return await main
        return run(wrapped(), **kw)

    uvloop.run = probed_run


_OUT = os.environ.get("PROBE_OUT")
if _OUT and "serve" in sys.argv:
    _install(_OUT)
