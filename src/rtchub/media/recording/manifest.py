"""A recording's status, and the JSON manifest beside its files that writes it down.

Times in a manifest are seconds of *recording time*: 0 is when the recording
started, and it runs on through pauses. A track's file follows the sender's RTP
clock from its first frame, and its ``start_offset`` is the recording time of that
media time 0 (from the least-delayed frame: its arrival less its media time), so
media time ``t`` of a file is recording time ``start_offset + t``: that is all it
takes to line files up. A pause leaves a
gap in every file that was open across it; ``pauses`` lists them (per track,
the ones that fall within its life).

The manifest is rewritten (atomically: a temporary file renamed over it) when
the recording starts, pauses, resumes, a track opens or ends its file, and when
the recording stops or fails.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from rtchub.media.recording.state import RecordingState

__all__ = ["MANIFEST_NAME", "Pause", "RecordingStatus", "TrackStatus", "write_manifest"]

MANIFEST_NAME: Final = "manifest.json"
FORMAT: Final = "rtchub-recording/1"


@dataclass(frozen=True, slots=True)
class Pause:
    """A pause, in recording time; ``end`` is None while it lasts."""

    start: float
    end: float | None

    def overlaps(self, start: float | None, end: float | None) -> bool:
        """True when the pause falls within the span ``start``..``end`` (open ends)."""
        if start is None:
            return False
        return (self.end is None or self.end > start) and (end is None or self.start < end)


@dataclass(frozen=True, slots=True)
class TrackStatus:
    """One recorded track: what it is, its file, and what happened to its packets."""

    track_id: str
    participant: str
    kind: str
    codec: str
    state: str  # waiting (for its first key frame) | recording | ended
    file: str | None  # relative to the recording's directory
    container: str | None
    width: int
    height: int
    start_offset: float | None
    end_offset: float | None
    frames: int
    bytes: int
    packets: int
    packets_lost: int
    frames_dropped: int
    keyframe_requests: int


@dataclass(frozen=True, slots=True)
class RecordingStatus:
    """A room recording as it is now."""

    room_id: str
    state: RecordingState
    reason: str | None  # why it failed
    directory: Path | None
    started_at: float | None  # wall clock (Unix seconds)
    duration: float  # recording time so far, pauses included
    pauses: tuple[Pause, ...]
    tracks: tuple[TrackStatus, ...]

    @property
    def manifest_path(self) -> Path | None:
        """Where the manifest is (None before the recording started)."""
        return None if self.directory is None else self.directory / MANIFEST_NAME

    def manifest(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict."""
        return {
            "format": FORMAT,
            "room": self.room_id,
            "state": self.state.value,
            "reason": self.reason,
            "started_at": _iso(self.started_at),
            "duration": _seconds(self.duration),
            "pauses": [_pause(p) for p in self.pauses],
            "tracks": [self._track(t) for t in self.tracks],
        }

    def _track(self, track: TrackStatus) -> dict[str, Any]:
        return {
            "track_id": track.track_id,
            "participant": track.participant,
            "kind": track.kind,
            "codec": track.codec,
            "state": track.state,
            "file": track.file,
            "container": track.container,
            **({"width": track.width, "height": track.height} if track.kind == "video" else {}),
            "start_offset": _seconds(track.start_offset),
            "end_offset": _seconds(track.end_offset),
            "pauses": [_pause(p) for p in self.pauses
                       if p.overlaps(track.start_offset, track.end_offset)],
            "frames": track.frames,
            "bytes": track.bytes,
            "packets": track.packets,
            "packets_lost": track.packets_lost,
            "frames_dropped": track.frames_dropped,
            "keyframe_requests": track.keyframe_requests,
        }

    def manifest_json(self) -> bytes:
        """The manifest, rendered."""
        return orjson.dumps(self.manifest(), option=orjson.OPT_INDENT_2) + b"\n"


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3) + 0.0  # never -0.0


def _pause(pause: Pause) -> dict[str, float | None]:
    return {"start": _seconds(pause.start), "end": _seconds(pause.end)}


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    stamp = dt.datetime.fromtimestamp(wall, dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_manifest(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (write a temporary file, sync, rename)."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
