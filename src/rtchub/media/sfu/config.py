"""What the SFU's media plane may negotiate and how it forwards: one validated value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rtchub.errors import CodecNotSupported

__all__ = ["AUDIO_CODECS", "VIDEO_CODECS", "SfuMediaConfig"]

# What aiortc 1.16 can negotiate (codec name as in SDP -> mime type). VP9 and AV1 are
# not in its codec table, so an answer could never contain them.
AUDIO_CODECS: Final = {"opus": "audio/opus", "g722": "audio/G722", "pcmu": "audio/PCMU",
                       "pcma": "audio/PCMA"}
VIDEO_CODECS: Final = {"vp8": "video/VP8", "h264": "video/H264"}


def _mime_types(kind: str, names: tuple[str, ...], known: dict[str, str]) -> tuple[str, ...]:
    found: list[str] = []
    for name in names:
        mime = known.get(name.lower().removeprefix(f"{kind}/"))
        if mime is None:
            raise CodecNotSupported(
                f"{kind} codec {name!r} is not supported: the SFU negotiates "
                f"{', '.join(sorted(known))}")
        if mime not in found:
            found.append(mime)
    return tuple(found)


@dataclass(frozen=True)
class SfuMediaConfig:
    """Codecs, bitrates, addresses and timing of the SFU's peers.

    ``audio_codecs`` / ``video_codecs`` are in order of preference (an answer
    lists them in this order, so a browser sends the first it shares); an empty
    tuple refuses that kind. Bitrates are bits per second: the audio cap goes in
    the answer (``b=AS``/``b=TIAS``, Opus ``maxaveragebitrate``), the video cap in
    the answer and in the REMB sent upstream, never below ``video_min_bitrate``.
    """

    audio_codecs: tuple[str, ...] = ("opus",)
    video_codecs: tuple[str, ...] = ("VP8", "H264")
    audio_max_bitrate: int = 128_000
    video_min_bitrate: int = 100_000
    video_max_bitrate: int = 2_500_000
    video_max_width: int = 1920  # CALL_VIDEO_MAX_WIDTH/HEIGHT/FPS: VP8 max-fs/max-fr asked
    video_max_height: int = 1080  # of publishers in the answer (RFC 7741; docs/calls.md
    video_max_fps: int = 30  # says who honours them)
    node_ips: tuple[str, ...] = ()  # RTC_NODE_IP: host candidates gathered
    udp_ports: tuple[int, int] | None = None  # RTC_UDP_PORTS
    consent_timeout: float = 30.0  # RTC_CONSENT_TIMEOUT: no consent check answered for this
    keyframe_interval: float = 0.5  # at most one PLI upstream per track per interval
    remb_interval: float = 1.0  # REMB upstream to each publisher
    remb_stale_after: float = 5.0  # a subscriber's estimate older than this is ignored
    signaling_timeout: float = 30.0  # wait for an answer to the server's offer
    cache_size: int = 512  # packets kept per subscriber for NACKs
    socket_buffer: int = 2 * 1024 * 1024  # SO_RCVBUF/SO_SNDBUF of the media sockets

    def __post_init__(self) -> None:
        _mime_types("audio", self.audio_codecs, AUDIO_CODECS)
        _mime_types("video", self.video_codecs, VIDEO_CODECS)
        if self.audio_max_bitrate <= 0:
            raise ValueError(f"audio max bitrate must be positive, got {self.audio_max_bitrate}")
        if not 0 < self.video_min_bitrate <= self.video_max_bitrate:
            raise ValueError(f"video bitrates need 0 < min <= max, got min "
                             f"{self.video_min_bitrate}, max {self.video_max_bitrate}")
        for name in ("video_max_width", "video_max_height", "video_max_fps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("keyframe_interval", "remb_interval", "remb_stale_after",
                     "signaling_timeout", "consent_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.cache_size <= 0:
            raise ValueError(f"cache_size must be positive, got {self.cache_size}")
        if self.socket_buffer <= 0:
            raise ValueError(f"socket_buffer must be positive, got {self.socket_buffer}")
        if self.udp_ports is not None:
            low, high = self.udp_ports
            if not 0 < low <= high < 65536:
                raise ValueError(f"udp_ports must be a range within 1-65535, got {low}-{high}")

    def allowed(self, kind: str) -> tuple[str, ...]:
        """The mime types allowed for ``kind`` ("audio" or "video"), preferred first."""
        if kind == "audio":
            return _mime_types("audio", self.audio_codecs, AUDIO_CODECS)
        if kind == "video":
            return _mime_types("video", self.video_codecs, VIDEO_CODECS)
        return ()

    @property
    def video_max_macroblocks(self) -> int:
        """The largest frame allowed, in 16x16 macroblocks (VP8's ``max-fs``)."""
        return -(-self.video_max_width // 16) * -(-self.video_max_height // 16)

    def max_bitrate(self, kind: str) -> int:
        """The cap put in the SDP for ``kind``."""
        return self.audio_max_bitrate if kind == "audio" else self.video_max_bitrate
