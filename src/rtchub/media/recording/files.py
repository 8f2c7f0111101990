"""One track's container file, written with PyAV without transcoding.

A :class:`TrackFile` is driven from the recording's file thread (see
:mod:`rtchub.media.recording.worker`): opened when its track's first key frame
is known (a video stream's header needs the picture size), then written one
encoded frame at a time, closed once. Video streams are PyAV "mux streams"
(no codec context, so no encoder is ever opened); H.264's parameter sets go
into the Matroska header from the first frame, which PyAV reads for it. Opus
needs an ``OpusHead`` in its header, which only a codec context provides, so the
Opus stream has a libopus context that is opened (it writes that header) and
never given a frame. Clusters are cut every second, so a crash loses at most
about a second of a file and the muxer holds at most that much in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, NamedTuple

import av

from rtchub.media.recording.codecs import RecordedCodec

__all__ = ["TIME_BASE", "StreamInfo", "TimedFrame", "TrackFile"]

TIME_BASE: Final = Fraction(1, 1000)  # Matroska's own: file ticks are milliseconds
_MUXER_OPTIONS: Final = {"cluster_time_limit": "1000", "cluster_size_limit": "2097152"}


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a track's stream header says: its codec and, for video, the picture size."""

    codec: RecordedCodec
    width: int = 0
    height: int = 0


class TimedFrame(NamedTuple):
    """One encoded frame placed on its file's time line (ticks of :data:`TIME_BASE`)."""

    data: bytes
    pts: int
    duration: int
    keyframe: bool


class TrackFile:
    """A track's file: :meth:`open`, :meth:`write` per frame, :meth:`close` once."""

    __slots__ = ("_container", "_stream", "bytes", "frames", "last_end", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._container: Any = None
        self._stream: Any = None
        self.frames = 0
        self.bytes = 0
        self.last_end = 0  # ticks: the end of the last frame written

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._container is not None

    def open(self, info: StreamInfo) -> None:
        """Create the file and its stream (the header is written with the first frame)."""
        if self._container is not None:
            raise RuntimeError(f"{self.path} is already open")
        codec = info.codec
        container: Any = av.open(str(self.path), "w", format=codec.container,
                                 options=dict(_MUXER_OPTIONS))
        try:
            if codec.video:
                stream = container.add_mux_stream(codec.stream_codec, width=info.width,
                                                  height=info.height)
            else:
                stream = container.add_stream(codec.stream_codec, rate=codec.clock_rate,
                                              layout="stereo")
            stream.time_base = TIME_BASE
        except BaseException:
            container.close()
            raise
        self._container = container
        self._stream = stream

    def write(self, frame: TimedFrame) -> None:
        """Mux one frame; raises what the muxer raises (an OSError when the disk is full)."""
        packet = av.Packet(frame.data)
        packet.stream = self._stream
        packet.time_base = TIME_BASE
        packet.pts = packet.dts = frame.pts
        if frame.duration:
            packet.duration = frame.duration
        packet.is_keyframe = frame.keyframe
        self._container.mux_one(packet)
        self.frames += 1
        self.bytes += len(frame.data)
        self.last_end = frame.pts + frame.duration

    def close(self) -> None:
        """Write the trailer and close the file (safe to call twice, or unopened)."""
        container, self._container = self._container, None
        self._stream = None
        if container is not None:
            container.close()
