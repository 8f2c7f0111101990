"""Voice broadcast streams (seed 002): which are live, in what order, under what limit.

Pure rules, no I/O: :class:`Streams` records live streams in the order they went live.
The service announces what changes; the media of each stream lives elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rtchub.base.connection import Address
from rtchub.errors import CapacityError, Conflict, StreamEnded, StreamNotFound

__all__ = ["DIRECTORY_KEY", "ENDED", "NO_STREAM", "RECORDS", "StreamDirectory", "StreamInfo",
           "Streams", "add_stream", "remove_stream", "stream_id_for"]

NO_STREAM: Final = "No audio stream available"
ENDED: Final = "Stream ended"
MAX_NAME: Final = 64
# the store key of the live streams of every node (a StreamDirectory)
DIRECTORY_KEY: Final = "voice:streams"


def stream_id_for(connection_id: str) -> str:
    """Seed 002's stream ID of a sender: ``stream_{connection_id}``."""
    return f"stream_{connection_id}"


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A live stream: its ID, its sender's connection, its label, when it went live."""

    stream_id: str
    owner: Address
    name: str
    started: float      # hub clock
    started_at: float   # Unix time


@dataclass(frozen=True, slots=True)
class StreamDirectory:
    """The live streams of the whole deployment, oldest first (what the store holds)."""

    streams: tuple[StreamInfo, ...] = ()


def add_stream(directory: StreamDirectory | None, info: StreamInfo, max_streams: int
               ) -> StreamDirectory:
    """The directory with ``info`` live; Conflict when it is already, CapacityError at
    ``max_streams`` live streams."""
    streams = directory.streams if directory is not None else ()
    if any(s.stream_id == info.stream_id for s in streams):
        raise Conflict(f"stream {info.stream_id} is already live")
    if len(streams) >= max_streams:
        raise CapacityError(f"too many live streams (limit {max_streams})")
    return StreamDirectory((*streams, info))


def remove_stream(directory: StreamDirectory | None, stream_id: str
                  ) -> tuple[StreamDirectory | None, StreamInfo | None]:
    """The directory without ``stream_id`` (None when empty) and the stream removed."""
    streams = directory.streams if directory is not None else ()
    gone = next((s for s in streams if s.stream_id == stream_id), None)
    if gone is None:
        return directory, None
    kept = tuple(s for s in streams if s.stream_id != stream_id)
    return (StreamDirectory(kept) if kept else None), gone


class Streams:
    """Live streams, oldest first, at most ``max_streams``: this node's copy of the
    directory (the service keeps it in step with the store)."""

    def __init__(self, max_streams: int) -> None:
        if max_streams <= 0:
            raise ValueError(f"max_streams must be positive, got {max_streams}")
        self._max = max_streams
        self._live: dict[str, StreamInfo] = {}

    def check_room(self) -> None:
        """Raise :class:`CapacityError` when no other stream may go live."""
        if len(self._live) >= self._max:
            raise CapacityError(f"too many live streams (limit {self._max})")

    def go_live(self, info: StreamInfo) -> StreamInfo:
        """Record ``info``; raises if it is already live or the limit is reached."""
        if info.stream_id in self._live:
            raise Conflict(f"stream {info.stream_id} is already live")
        self.check_room()
        self._live[info.stream_id] = info
        return info

    def end(self, stream_id: str) -> StreamInfo | None:
        """Remove a stream; returns it if it was live."""
        return self._live.pop(stream_id, None)

    def replace(self, streams: tuple[StreamInfo, ...]) -> None:
        """Hold exactly ``streams`` (the directory as the store has it now)."""
        self._live = {s.stream_id: s for s in streams}

    def get(self, stream_id: str) -> StreamInfo | None:
        """A live stream by ID."""
        return self._live.get(stream_id)

    def ids(self) -> list[str]:
        """Live stream IDs, oldest first."""
        return list(self._live)

    def all(self) -> list[StreamInfo]:
        """Live streams, oldest first."""
        return list(self._live.values())

    def __len__(self) -> int:
        return len(self._live)

    def latest(self) -> StreamInfo | None:
        """The stream that went live most recently."""
        if not self._live:
            return None
        return next(reversed(self._live.values()))

    def resolve(self, stream_id: str | None) -> StreamInfo:
        """The stream a receiver asked for (latest when None), or seed 002's error."""
        if stream_id is None:
            info = self.latest()
            if info is None:
                raise StreamNotFound(NO_STREAM)
            return info
        info = self._live.get(stream_id)
        if info is None:
            if not self._live:
                raise StreamNotFound(NO_STREAM)
            raise StreamEnded(ENDED)
        return info

    def find(self, stream_id: str | None) -> StreamInfo:
        """The stream an MP3 listener asked for (latest when None); StreamNotFound else."""
        if stream_id is None:
            info = self.latest()
            if info is None:
                raise StreamNotFound(NO_STREAM)
            return info
        info = self._live.get(stream_id)
        if info is None:
            raise StreamNotFound("Stream not found")
        return info


# what the store holds for voice (registered with the codec that carries it)
RECORDS = (StreamDirectory,)
