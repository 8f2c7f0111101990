"""Voice broadcast streams (seed 002): which are live, which is latest, who hears about them.

Pure rules, no I/O: :class:`Streams` records live streams in the order they
went live and the voice-speaking connections that every ``stream_available``
and ``stream_ended`` goes to. Callers deliver what the methods return.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtchub.errors import CapacityError, Conflict, StreamEnded, StreamNotFound

__all__ = ["StreamInfo", "Streams", "stream_id_for"]

NO_STREAM = "No audio stream available"
ENDED = "Stream ended"


def stream_id_for(connection_id: str) -> str:
    """Seed 002's stream ID of a sender: ``stream_{connection_id}``."""
    return f"stream_{connection_id}"


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A live stream: its ID, the connection sending it, when it went live."""

    stream_id: str
    owner: str
    started: float


class Streams:
    """Live streams (oldest first) and the audience told about them."""

    def __init__(self, max_streams: int) -> None:
        if max_streams <= 0:
            raise ValueError(f"max_streams must be positive, got {max_streams}")
        self._max = max_streams
        self._live: dict[str, StreamInfo] = {}
        self._audience: set[str] = set()

    # -- audience ------------------------------------------------------------------------

    def join_audience(self, conn_id: str) -> None:
        """``conn_id`` speaks voice: it hears every stream_available/stream_ended."""
        self._audience.add(conn_id)

    def leave_audience(self, conn_id: str) -> None:
        """``conn_id`` is gone."""
        self._audience.discard(conn_id)

    def audience(self) -> tuple[str, ...]:
        """A snapshot of who to tell."""
        return tuple(self._audience)

    # -- streams -------------------------------------------------------------------------

    def go_live(self, owner: str, when: float) -> StreamInfo:
        """``owner``'s stream is live; raises if it already is or the limit is reached."""
        stream_id = stream_id_for(owner)
        if stream_id in self._live:
            raise Conflict(f"stream {stream_id} is already live")
        if len(self._live) >= self._max:
            raise CapacityError(f"too many live streams (limit {self._max})")
        info = StreamInfo(stream_id, owner, when)
        self._live[stream_id] = info
        return info

    def end(self, stream_id: str) -> StreamInfo | None:
        """Remove a stream; returns it if it was live."""
        return self._live.pop(stream_id, None)

    def get(self, stream_id: str) -> StreamInfo | None:
        """A live stream by ID."""
        return self._live.get(stream_id)

    def ids(self) -> list[str]:
        """Live stream IDs, oldest first."""
        return list(self._live)

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
