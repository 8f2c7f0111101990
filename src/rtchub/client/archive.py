"""A directory on the wire: a tar stream whose length is known before it starts.

The sender plans the archive first (every header is built up front), so the
receiver is told the exact size and both progress bars are honest; then it
streams headers and file contents without a temporary file. The receiver
writes the stream to ``NAME.part``, checks its SHA-256 and only then unpacks
it, member by member, through tarfile's ``data`` filter (no absolute paths,
no ``..``, no links out, no devices), into a hidden directory that is renamed
to ``NAME`` at the end. Only directories and regular files travel; symbolic
links and special files are skipped and named.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Final

from rtchub.client.progress import Progress
from rtchub.client.signaling import ClientError

__all__ = ["DirectorySource", "plan", "unpack"]

_BLOCK: Final = tarfile.BLOCKSIZE
_RECORD: Final = tarfile.RECORDSIZE
_FORMAT: Final = tarfile.PAX_FORMAT


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


@dataclass(frozen=True, slots=True)
class _Member:
    header: bytes
    path: Path | None  # the file to read; None for a directory
    size: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What a directory's archive holds, and its exact length."""

    name: str
    members: tuple[_Member, ...]
    size: int
    files: int
    skipped: tuple[str, ...]


def _info(arcname: str, st: os.stat_result, directory: bool) -> bytes:
    info = tarfile.TarInfo(arcname)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.size = 0 if directory else st.st_size
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(_FORMAT, "utf-8", "surrogateescape")


def plan(root: Path) -> Plan:
    """Walk ``root`` (symbolic links are not followed) and plan its archive."""
    name = root.resolve().name or "root"
    members: list[_Member] = []
    skipped: list[str] = []

    def add_dir(path: Path, arcname: str) -> None:
        members.append(_Member(_info(arcname, path.stat(), True), None, 0))

    add_dir(root, name)
    def unreadable(error: OSError) -> None:
        raise error

    for here, dirs, names in os.walk(root, onerror=unreadable):
        dirs.sort()
        base = Path(here)
        rel = PurePosixPath(name, *base.relative_to(root).parts)
        for entry in [*dirs, *sorted(names)]:
            path = base / entry
            st = path.lstat()
            if stat.S_ISDIR(st.st_mode):
                add_dir(path, str(rel / entry))
            elif stat.S_ISREG(st.st_mode):
                members.append(_Member(_info(str(rel / entry), st, False), path, st.st_size))
            else:
                skipped.append(str(rel / entry))
        dirs[:] = [d for d in dirs if stat.S_ISDIR((base / d).lstat().st_mode)]
    size = sum(len(m.header) + _padded(m.size) for m in members) + 2 * _BLOCK
    size = -(-size // _RECORD) * _RECORD
    files = sum(1 for m in members if m.path is not None)
    return Plan(name, tuple(members), size, files, tuple(skipped))


class DirectorySource:
    """A planned archive read in pieces of any size."""

    def __init__(self, archive: Plan) -> None:
        self.plan = archive
        self._pieces = self._generate()
        self._buffer = bytearray()
        self._handle: BinaryIO | None = None

    def _generate(self) -> Generator[bytes, None, None]:
        written = 0
        for member in self.plan.members:
            yield member.header
            written += len(member.header)
            if member.path is not None:
                left = member.size
                try:
                    self._handle = member.path.open("rb")
                except OSError as exc:
                    raise ClientError(f"cannot read {member.path}: {exc.strerror}") from None
                with self._handle:
                    while left:
                        chunk = self._handle.read(min(left, 1 << 20))
                        if not chunk:
                            raise ClientError(f"{member.path} shrank while it was being sent; "
                                              "stopped")
                        left -= len(chunk)
                        yield chunk
                self._handle = None
                pad = _padded(member.size) - member.size
                written += member.size + pad
                if pad:
                    yield bytes(pad)
        yield bytes(self.plan.size - written)  # end-of-archive blocks and record padding

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer only at the end)."""
        while len(self._buffer) < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            if not self._buffer and len(piece) == n:
                return piece
            self._buffer += piece
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def close(self) -> None:
        """Close the file being read, if any."""
        if self._handle is not None:
            self._handle.close()
        self._pieces.close()


async def unpack(archive: Path, name: str, target: Path, progress: Progress | None = None
                 ) -> int:
    """Unpack ``archive`` (whose members must all lie under ``name``) as ``target``;
    returns the number of files. Every name is checked before anything is written, and
    the loop yields between members, so Ctrl-C stops it."""
    hidden = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=target.parent))
    directories: list[tuple[PurePosixPath, int, float]] = []
    try:
        files = 0
        with tarfile.open(archive, "r:", encoding="utf-8", errors="surrogateescape") as tar:
            members = tar.getmembers()
            for member in members:
                parts = PurePosixPath(member.name).parts
                if not parts or parts[0] != name:
                    raise ClientError(f"the archive holds {member.name[:60]!r}, outside "
                                      f"{name!r}; nothing was unpacked")
            if progress is not None:
                progress.total = sum(m.size for m in members if m.isfile())
            for member in members:
                parts = PurePosixPath(member.name).parts
                try:
                    # a directory gets its mode and time once its files are in
                    tar.extract(member, hidden, set_attrs=not member.isdir(), filter="data")
                except tarfile.FilterError as exc:
                    raise ClientError(f"refused an archive member: {exc}") from None
                if member.isdir():
                    directories.append((PurePosixPath(*parts[1:]), member.mode, member.mtime))
                if member.isfile():
                    files += 1
                    if progress is not None:
                        progress.update(member.size)
                await asyncio.sleep(0)
        top = hidden / name
        if not top.is_dir():
            raise ClientError("the archive holds no directory")
        os.rename(top, target)
    finally:
        shutil.rmtree(hidden, ignore_errors=True)
    for rel, mode, mtime in reversed(directories):
        path = target.joinpath(*rel.parts)
        os.utime(path, (mtime, mtime))
        os.chmod(path, stat.S_IMODE(mode) & ~0o022)  # as tarfile's data filter does
    return files
