"""A real ``redis-server`` for tests: started on a free loopback port, killed by signal.

The fixture waits for the server's own "Ready to accept connections" line (an event,
not a poll), so a test starts only once Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["RedisProcess", "free_port", "redis_missing", "redis_server"]

READY = b"Ready to accept connections"
START_TIMEOUT = 20.0


def redis_missing() -> str | None:
    """Why the Redis tests cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install -y redis-server)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """One redis-server process that can be killed and started again on the same port."""

    def __init__(self, directory: Path, port: int, persistence: bool) -> None:
        self.directory = directory
        self.port = port
        self.persistence = persistence
        self.proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start and return once Redis accepts connections."""
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.directory), "--save", "", "--protected-mode", "no",
                "--appendonly", "yes" if self.persistence else "no"]
        if self.persistence:
            args += ["--appendfsync", "always"]
        self.proc = proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert proc.stdout is not None
        seen = b""
        async with asyncio.timeout(START_TIMEOUT):
            while READY not in seen:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"redis-server exited: {seen.decode()[-2000:]}")
                seen += line
        self._drain = asyncio.get_running_loop().create_task(self._discard(proc))

    @staticmethod
    async def _discard(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while await proc.stdout.readline():
            pass

    async def stop(self, sig: int = signal.SIGKILL) -> None:
        """Stop with ``sig`` (SIGKILL: no goodbye, no save) and wait for the exit."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        await proc.wait()
        if self._drain is not None:
            await self._drain
            self._drain = None


@asynccontextmanager
async def redis_server(directory: Path, persistence: bool = False
                       ) -> AsyncIterator[RedisProcess]:
    """A started redis-server in ``directory``, killed afterwards."""
    server = RedisProcess(directory, free_port(), persistence)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
