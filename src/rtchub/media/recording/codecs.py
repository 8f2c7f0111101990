"""The codecs a recording writes as they arrive, and the container each goes into.

VP8, VP9 and Opus go into WebM; H.264 into Matroska (``.mkv``). Both are
Matroska underneath, which survives a crash (a file cut short still plays up
to its last cluster), unlike MP4 whose index is written at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rtchub.errors import CodecNotSupported
from rtchub.media.recording.payloads import Fragment, parse_h264, parse_opus, parse_vp8, parse_vp9
from rtchub.media.recording.pictures import (
    Size,
    h264_is_keyframe,
    h264_size,
    vp8_is_keyframe,
    vp8_size,
    vp9_is_keyframe,
    vp9_size,
)

__all__ = ["RecordedCodec", "recorded_codec", "supported_codecs"]


def _always(_: bytes) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class RecordedCodec:
    """How one codec is depacketized, checked and muxed."""

    mime_type: str  # as negotiated: "video/VP8"
    name: str  # as the manifest says it: "VP8"
    kind: str  # "audio" or "video"
    clock_rate: int
    container: str  # the PyAV (FFmpeg) muxer
    extension: str
    stream_codec: str  # the PyAV codec name of the stream
    parse: Callable[[bytes], Fragment]
    is_keyframe: Callable[[bytes], bool]  # of a whole frame
    size: Callable[[bytes], Size | None] | None = None  # of a key frame; video only

    @property
    def video(self) -> bool:
        """True for a video codec (gated on key frames)."""
        return self.kind == "video"

    def can_start(self, frame: bytes) -> bool:
        """Whether a decoder can start from ``frame`` alone: a key frame whose header gives
        the picture size (for H.264, an IDR picture with its SPS and PPS)."""
        return self.size is None or self.size(frame) is not None


_CODECS = {
    codec.mime_type.lower(): codec
    for codec in (
        RecordedCodec("video/VP8", "VP8", "video", 90000, "webm", "webm", "vp8", parse_vp8,
                      vp8_is_keyframe, vp8_size),
        RecordedCodec("video/VP9", "VP9", "video", 90000, "webm", "webm", "vp9", parse_vp9,
                      vp9_is_keyframe, vp9_size),
        RecordedCodec("video/H264", "H264", "video", 90000, "matroska", "mkv", "h264",
                      parse_h264, h264_is_keyframe, h264_size),
        RecordedCodec("audio/opus", "opus", "audio", 48000, "webm", "webm", "libopus",
                      parse_opus, _always),
    )
}


def supported_codecs() -> tuple[str, ...]:
    """The MIME types a recording accepts."""
    return tuple(codec.mime_type for codec in _CODECS.values())


def recorded_codec(mime_type: str) -> RecordedCodec:
    """The codec for a negotiated MIME type; :class:`CodecNotSupported` for any other."""
    codec = _CODECS.get(mime_type.lower())
    if codec is None:
        raise CodecNotSupported(f"cannot record {mime_type!r}: recording writes "
                                f"{', '.join(supported_codecs())} without transcoding")
    return codec
