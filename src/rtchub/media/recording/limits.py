"""The bounds a recording keeps its memory within, and its timing settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RecordingLimits"]


@dataclass(frozen=True, slots=True)
class RecordingLimits:
    """Every buffer a recording holds has its bound here; validated on construction.

    Per track: the reorder window (packets held behind a gap, and how long) and
    the largest frame. Per recording: the tracks, and the backlog of file
    writes waiting for the disk (jobs and bytes). Worst case per recording is
    about ``max_tracks * (reorder_packets * 1.5 KB + max_frame_bytes) +
    backlog_bytes``, plus about a second of media per open file in the muxer.
    """

    reorder_packets: int = 128  # packets held behind a gap before it is declared lost
    reorder_delay: float = 0.2  # seconds the oldest held packet may wait for a gap
    max_frame_bytes: int = 4 << 20  # a larger frame is dropped (a 4K key frame is ~1 MB)
    max_tracks: int = 64
    backlog_jobs: int = 4096
    backlog_bytes: int = 32 << 20
    keyframe_interval: float = 0.5  # seconds between key frame requests of one track
    resync_after: float = 5.0  # seconds RTP time may disagree with arrival time

    def __post_init__(self) -> None:
        for name in ("reorder_packets", "max_frame_bytes", "max_tracks", "backlog_jobs",
                     "backlog_bytes"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"recording limit {name} must be at least 1, got {value}")
        for name in ("reorder_delay", "keyframe_interval", "resync_after"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"recording setting {name} cannot be negative, got {value}")
