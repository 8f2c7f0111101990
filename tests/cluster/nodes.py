"""Real ``rtchub serve`` nodes for the multi-node tests: subprocesses on loopback ports,
started against a real redis-server, killed with real signals.

A node's log is read by a thread; a test waits for a line in it (``wait_for``), which is
an event the node reports ("rtchub ready", "backplane connected", "is lost"), never a
sleep. Each node is its own process with its own event loop, as in production.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from tests.cluster.redis import RedisProcess, free_port, redis_server

__all__ = ["Cluster", "Node", "cluster"]

START_TIMEOUT = 60.0     # a loaded 2-core machine imports aiortc slowly
LOG_TIMEOUT = 20.0


class Node:
    """One ``rtchub serve`` process."""

    def __init__(self, name: str, env: Mapping[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**os.environ, **env, "ADDR": f"127.0.0.1:{self.port}",
                    "NODE_URL": f"http://127.0.0.1:{self.port}",
                    "STREAM_ADDR": "", "LOG_LEVEL": env.get("LOG_LEVEL", "info"),
                    "RTC_NODE_IP": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        """Start and return once the node logs that it is ready."""
        mark = len(self.lines)
        # faulthandler: a node that hangs on SIGTERM prints its stack on SIGABRT
        self.proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "rtchub", "serve"], env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        self.wait_for("rtchub ready", mark, START_TIMEOUT)

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            with self._cond:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<exited>")
            self._cond.notify_all()

    def mark(self) -> int:
        """The position in the log from which a later ``wait_for`` looks."""
        with self._cond:
            return len(self.lines)

    def wait_for(self, pattern: str, since: int = 0, timeout: float = LOG_TIMEOUT) -> str:
        """The first log line at or after ``since`` that matches ``pattern`` (regex)."""
        regex = re.compile(pattern)
        with self._cond:
            def found() -> str | None:
                for line in self.lines[since:]:
                    if regex.search(line):
                        return line
                    if line == "<exited>":
                        raise AssertionError(f"{self.name} exited: {self.tail()}")
                return None

            line: str | None = None

            def check() -> bool:
                nonlocal line
                line = found()
                return line is not None

            if not self._cond.wait_for(check, timeout):
                raise AssertionError(f"{self.name}: no log line {pattern!r} within "
                                     f"{timeout}s: {self.tail()}")
            assert line is not None
            return line

    async def until(self, pattern: str, since: int = 0, timeout: float = LOG_TIMEOUT) -> str:
        """:meth:`wait_for` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for, pattern, since, timeout)

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` and wait for the process to end."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)   # faulthandler prints every thread's stack
            proc.wait()
            if self._reader is not None:
                self._reader.join(timeout=10)
            raise AssertionError(f"{self.name} did not stop on signal {sig}: "
                                 f"{self.tail()}") from None
        if self._reader is not None:
            self._reader.join(timeout=10)


class Cluster:
    """Nodes sharing one redis-server."""

    def __init__(self, redis: RedisProcess, env: Mapping[str, str]) -> None:
        self.redis = redis
        self.env = {"REDIS_URL": redis.url, **env}
        self.nodes: list[Node] = []

    def add(self, name: str, **env: str) -> Node:
        """Start one more node (``env`` adds to the cluster's settings)."""
        node = Node(name, {**self.env, **env})
        self.nodes.append(node)
        node.start()
        return node

    async def add_many(self, *names: str) -> list[Node]:
        """Start several nodes at once (their imports overlap)."""
        nodes = [Node(name, self.env) for name in names]
        self.nodes.extend(nodes)
        await asyncio.gather(*(asyncio.to_thread(n.start) for n in nodes))
        return nodes

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None:
                node.kill(signal.SIGTERM)


@asynccontextmanager
async def cluster(directory: Path, *, persistence: bool = False, **env: str
                  ) -> AsyncIterator[Cluster]:
    """A redis-server and an empty cluster on it (add nodes with ``add``)."""
    async with redis_server(directory, persistence) as redis:
        group = Cluster(redis, env)
        try:
            yield group
        finally:
            await asyncio.to_thread(group.stop)


@contextmanager
def terminating(node: Node) -> Iterator[Node]:
    """Stop ``node`` with SIGTERM afterwards."""
    try:
        yield node
    finally:
        if node.proc is not None:
            node.kill(signal.SIGTERM)
