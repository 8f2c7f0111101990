"""Standard input and output without blocking threads: a question, a pipe in, a pipe out.

A thread blocked in ``read()`` cannot be cancelled, and ``asyncio.run`` waits
for it at exit: Ctrl-C would hang until someone pressed Enter. So pipes and
terminals are read and written through the event loop (``add_reader``,
``connect_read_pipe``, ``connect_write_pipe``). Regular files (``< file``,
``> file``) never block and are used directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import stat
from typing import TextIO

__all__ = ["PipeReader", "PipeWriter", "ask", "is_pipe_like"]


def is_pipe_like(fd: int) -> bool:
    """A pipe, socket or terminal the event loop can watch: reads and writes on it may
    block. (Regular files, and devices such as /dev/zero that epoll refuses, never do.)"""
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        return False
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(fd, selectors.EVENT_READ)
        except (OSError, ValueError):
            return False
    return True


async def _read_line(fd: int) -> str:
    """One line from ``fd`` (without consuming more than it is given)."""
    loop = asyncio.get_running_loop()
    line = bytearray()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 1024)
        except BlockingIOError:
            return
        except OSError as exc:
            if not done.done():
                done.set_exception(exc)
            return
        line.extend(chunk)
        if (not chunk or b"\n" in chunk) and not done.done():
            done.set_result(None)

    try:
        loop.add_reader(fd, readable)
    except (OSError, ValueError):  # a regular file or /dev/null: reading never blocks
        while (chunk := os.read(fd, 1024)) and b"\n" not in chunk:
            line.extend(chunk)
        line.extend(chunk)
        return line.decode(errors="replace")
    try:
        await done
    finally:
        loop.remove_reader(fd)
    return line.decode(errors="replace")


async def ask(question: str, out: TextIO, fd: int = 0) -> bool:
    """Print ``question`` to ``out`` and read a yes/no answer from ``fd`` (no: anything
    but y/yes, end of input included)."""
    out.write(question)
    out.flush()
    try:
        answer = await _read_line(fd)
    except OSError:
        return False
    except asyncio.CancelledError:
        out.write("\n")  # what comes next starts on a line of its own
        raise
    return answer.strip().lower() in ("y", "yes")


class PipeReader:
    """Reads a pipe or terminal through the event loop."""

    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.BaseTransport,
                 fd: int) -> None:
        self._reader = reader
        self._transport = transport
        self._fd = fd

    @classmethod
    async def open(cls, fd: int) -> PipeReader:
        """Read ``fd`` (duplicated: closing this leaves ``fd`` open)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe)
        return cls(reader, transport, fd)

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (what is there, at least one); b"" at the end."""
        return await self._reader.read(n)

    def close(self) -> None:
        """Stop reading."""
        self._transport.close()
        with contextlib.suppress(OSError):  # the file description is shared with ``fd``
            os.set_blocking(self._fd, True)


class _FlowControl(asyncio.Protocol):
    """Pauses writers while the pipe's buffer is full; remembers a broken pipe."""

    def __init__(self) -> None:
        self.lost: Exception | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._resumed: asyncio.Future[None] | None = None
        self._paused = False

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or BrokenPipeError("the reader of standard output went away")
        self.resume_writing()
        if not self.closed.done():
            self.closed.set_result(None)

    async def ready(self) -> None:
        while self._paused and self.lost is None:
            self._resumed = asyncio.get_running_loop().create_future()
            await self._resumed
        if self.lost is not None:
            raise self.lost


class PipeWriter:
    """Writes a pipe or terminal through the event loop, waiting while it is full."""

    def __init__(self, transport: asyncio.WriteTransport, flow: _FlowControl, fd: int) -> None:
        self._transport = transport
        self._flow = flow
        self._fd = fd

    @classmethod
    async def open(cls, fd: int) -> PipeWriter:
        """Write ``fd`` (duplicated: closing this leaves ``fd`` open)."""
        loop = asyncio.get_running_loop()
        transport, flow = await loop.connect_write_pipe(
            _FlowControl, os.fdopen(os.dup(fd), "wb", buffering=0))
        return cls(transport, flow, fd)

    async def write(self, data: bytes) -> None:
        """Queue ``data``; wait while the reader is behind."""
        if self._flow.lost is not None:
            raise self._flow.lost
        self._transport.write(data)
        await self._flow.ready()

    async def close(self) -> None:
        """Flush what is queued (until the reader takes it or goes away), then close."""
        self._transport.close()
        try:
            await self._flow.closed
        finally:
            with contextlib.suppress(OSError):  # the file description is shared with ``fd``
                os.set_blocking(self._fd, True)
