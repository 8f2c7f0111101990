"""What ``rtchub send`` reads: a file, a directory (as a tar stream) or standard input."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from rtchub.client.archive import DirectorySource, plan
from rtchub.client.progress import human_bytes
from rtchub.client.signaling import ClientError
from rtchub.client.stdio import PipeReader, is_pipe_like

__all__ = ["Offer", "Source", "open_source"]

Kind = Literal["file", "directory"]


@dataclass(frozen=True, slots=True)
class Offer:
    """What the sender offers: the first control message on the data channel."""

    name: str
    size: int | None  # None: standard input of unknown length
    kind: Kind = "file"
    files: int | None = None  # a directory's file count

    def describe(self) -> str:
        """``photos (directory, 12 files, 31.2 MiB)``, ``notes.txt (1.2 KiB)``."""
        size = "size unknown" if self.size is None else human_bytes(self.size)
        if self.kind == "directory":
            return f"{self.name} (directory, {self.files} files, {size})"
        return f"{self.name} ({size})"

    def message(self) -> dict[str, object]:
        """The control message."""
        out: dict[str, object] = {"kind": "file", "name": self.name, "size": self.size}
        if self.kind == "directory":
            out.update(type="directory", files=self.files)
        return out


class Source(Protocol):
    """Bytes to send and what they are."""

    offer: Offer
    skipped: tuple[str, ...]

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" at the end."""
        ...

    def close(self) -> None:
        """Release the file or pipe."""
        ...


class _File:
    def __init__(self, handle: BinaryIO, offer: Offer) -> None:
        self._handle = handle
        self.offer = offer
        self.skipped: tuple[str, ...] = ()

    async def read(self, n: int) -> bytes:
        return self._handle.read(n)  # a regular file: never blocks for long

    def close(self) -> None:
        self._handle.close()


class _Pipe:
    def __init__(self, pipe: PipeReader) -> None:
        self._pipe = pipe
        self.offer = Offer("stdin", None)
        self.skipped: tuple[str, ...] = ()

    async def read(self, n: int) -> bytes:
        return await self._pipe.read(n)

    def close(self) -> None:
        self._pipe.close()


class _Directory:
    def __init__(self, source: DirectorySource) -> None:
        self._source = source
        archive = source.plan
        self.offer = Offer(archive.name, archive.size, "directory", archive.files)
        self.skipped = archive.skipped

    async def read(self, n: int) -> bytes:
        return self._source.read(n)

    def close(self) -> None:
        self._source.close()


async def open_source(path: str) -> Source:
    """``-``: standard input (a redirected file keeps its size); a directory: its archive;
    anything else: a file."""
    if path == "-":
        fd = sys.stdin.fileno()
        if is_pipe_like(fd):
            return _Pipe(await PipeReader.open(fd))
        handle = os.fdopen(os.dup(fd), "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a device: /dev/zero, /dev/null
            return _File(handle, Offer("stdin", None))
        left = os.fstat(fd).st_size - os.lseek(fd, 0, os.SEEK_CUR)
        return _File(handle, Offer("stdin", max(left, 0)))
    return _open_path(Path(path))


def _open_path(path: Path) -> Source:
    try:
        if stat.S_ISDIR(path.stat().st_mode):
            return _Directory(DirectorySource(plan(path)))
        handle = path.open("rb")
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from None
    return _File(handle, Offer(path.name, os.fstat(handle.fileno()).st_size))
