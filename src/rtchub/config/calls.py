"""Call rooms' settings (seed 003): join-token auth, media limits, recording, timing.

:class:`CallSettings` is one validated value; :func:`load` builds it from the ``CALL_*``
and ``RECORDING_PATH`` rows of the settings table, and the call feature maps it onto the
SFU's media configuration. An invalid combination (a kind switched on with no codec, a
minimum bitrate above the maximum, a short token secret) raises
:class:`~rtchub.config.model.ConfigError` with one line naming the variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AUDIO_CODEC_NAMES",
    "MIN_SECRET_LENGTH",
    "VIDEO_CODEC_NAMES",
    "CallSettings",
    "parse_audio_codecs",
    "parse_bitrate",
    "parse_percent",
    "parse_video_codecs",
]

# What the SFU can negotiate (aiortc 1.16's codec table; rtchub.media.sfu.config maps each
# to its mime type and a test keeps the two in step). The names are matched without case.
AUDIO_CODEC_NAMES: Final = ("opus", "g722", "pcmu", "pcma")
VIDEO_CODEC_NAMES: Final = ("vp8", "h264")
MIN_SECRET_LENGTH: Final = 32  # bytes, as LiveKit asks of API secrets

_BITRATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(|k|m)(?:bps|b/s)?\s*", re.IGNORECASE)


def parse_bitrate(text: str) -> int:
    """Parse bits per second: ``128000``, ``128k``, ``128kbps``, ``2.5M``, ``2.5Mbps``."""
    match = _BITRATE.fullmatch(text)
    if not match:
        raise ValueError("a bitrate such as 128k, 2.5M or 128000 (bits per second)")
    scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2).lower()]
    return round(float(match.group(1)) * scale)


def parse_percent(text: str) -> float:
    """Parse a percentage: ``5``, ``5%``, ``2.5 %`` (0-100)."""
    try:
        value = float(text.strip().removesuffix("%").strip())
    except ValueError:
        raise ValueError("a percentage such as 5% or 2.5") from None
    if not 0 <= value <= 100:
        raise ValueError("a percentage between 0 and 100")
    return value


def _codecs(kind: str, known: tuple[str, ...], text: str) -> tuple[str, ...]:
    found: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        if name.lower() not in known:
            raise ValueError(f"a comma-separated list of {kind} codecs from "
                             f"{', '.join(known)} ({name!r} is not one)")
        if name.lower() not in (f.lower() for f in found):
            found.append(name)
    return tuple(found)


def parse_audio_codecs(text: str) -> tuple[str, ...]:
    """Parse ``opus`` or ``opus,g722``: known audio codecs in order of preference."""
    return _codecs("audio", AUDIO_CODEC_NAMES, text)


def parse_video_codecs(text: str) -> tuple[str, ...]:
    """Parse ``VP8,H264``: known video codecs in order of preference."""
    return _codecs("video", VIDEO_CODEC_NAMES, text)


def _check(ok: bool, message: str) -> None:
    if not ok:
        from rtchub.config.model import ConfigError  # the one error type of config

        raise ConfigError(message)


@dataclass(frozen=True, slots=True)
class CallSettings:
    """Everything call rooms are configured with, validated on construction.

    ``token_secret`` None is dev mode (every call-room join is a guest). Bitrates in
    bits per second; limits documented beside their settings in docs/configuration.md.
    """

    token_secret: str | None = None
    allow_guests: bool = False
    audio_enabled: bool = True
    audio_codecs: tuple[str, ...] = ("opus",)
    audio_max_bitrate: int = 128_000
    video_enabled: bool = True
    video_codecs: tuple[str, ...] = ("VP8", "H264")
    video_min_bitrate: int = 100_000
    video_max_bitrate: int = 2_500_000
    video_max_width: int = 1920
    video_max_height: int = 1080
    video_max_fps: int = 30
    signaling_timeout: float = 30.0
    max_members: int = 50
    recording_path: str = "recordings"
    quality_interval: float = 5.0  # seconds between two measurements of a participant
    quality_max_loss: float = 5.0  # % of packets lost above which a warning is given
    quality_max_jitter: float = 0.030  # seconds
    quality_max_rtt: float = 0.300  # seconds
    quality_min_bitrate: int = 100_000  # bits/s, while video flows
    adaptive_quality: bool = True  # SFU rooms pick each subscriber's simulcast layer
    adaptive_up_after: float = 8.0  # seconds of a good link before one layer up

    def __post_init__(self) -> None:
        if self.token_secret is not None:
            length = len(self.token_secret.encode())
            _check(length >= MIN_SECRET_LENGTH,
                   f"CALL_TOKEN_SECRET: expected at least {MIN_SECRET_LENGTH} bytes, got "
                   f"{length} (make one with: openssl rand -hex 32)")
        for kind, enabled, codecs, parse in (
                ("AUDIO", self.audio_enabled, self.audio_codecs, parse_audio_codecs),
                ("VIDEO", self.video_enabled, self.video_codecs, parse_video_codecs)):
            try:
                parse(",".join(codecs))
            except ValueError as exc:
                _check(False, f"CALL_{kind}_CODECS={','.join(codecs)!r}: expected {exc}")
            _check(not enabled or bool(codecs),
                   f"CALL_{kind}_CODECS is empty while CALL_{kind} is on: expected at least "
                   f"one codec (or CALL_{kind}=false to refuse {kind.lower()})")
        _check(6_000 <= self.audio_max_bitrate <= 510_000,
               f"CALL_AUDIO_MAX_BITRATE={self.audio_max_bitrate}: expected a bitrate between "
               "6k and 510k (Opus's range)")
        _check(self.video_min_bitrate >= 10_000,
               f"CALL_VIDEO_MIN_BITRATE={self.video_min_bitrate}: expected at least 10k")
        _check(self.video_max_bitrate <= 100_000_000,
               f"CALL_VIDEO_MAX_BITRATE={self.video_max_bitrate}: expected at most 100M")
        _check(self.video_min_bitrate <= self.video_max_bitrate,
               f"CALL_VIDEO_MIN_BITRATE={self.video_min_bitrate} is above "
               f"CALL_VIDEO_MAX_BITRATE={self.video_max_bitrate} (bits/s): expected "
               "min <= max")
        for name, value, high in (("WIDTH", self.video_max_width, 7680),
                                  ("HEIGHT", self.video_max_height, 4320),
                                  ("FPS", self.video_max_fps, 120)):
            low = 1 if name == "FPS" else 16
            _check(low <= value <= high, f"CALL_VIDEO_MAX_{name}={value}: expected an integer "
                   f"between {low} and {high}")
        _check(self.signaling_timeout > 0,
               f"CALL_SIGNALING_TIMEOUT={self.signaling_timeout}: expected a duration greater "
               "than zero")
        _check(self.max_members >= 1,
               f"CALL_MAX_MEMBERS={self.max_members}: expected an integer >= 1")
        _check(0.25 <= self.quality_interval <= 3600,
               f"CALL_QUALITY_INTERVAL={self.quality_interval:g}: expected a duration between "
               "250ms and 1h")
        _check(0 <= self.quality_max_loss <= 100,
               f"CALL_QUALITY_MAX_LOSS={self.quality_max_loss:g}: expected a percentage "
               "between 0 and 100")
        for name, limit in (("JITTER", self.quality_max_jitter), ("RTT", self.quality_max_rtt)):
            _check(0 < limit <= 60, f"CALL_QUALITY_MAX_{name}={limit:g}: expected a duration "
                   "greater than zero and at most 1m")
        _check(0 <= self.quality_min_bitrate <= 100_000_000,
               f"CALL_QUALITY_MIN_BITRATE={self.quality_min_bitrate}: expected a bitrate "
               "between 0 and 100M")
        _check(0 <= self.adaptive_up_after <= 600,
               f"CALL_ADAPTIVE_UP_AFTER={self.adaptive_up_after:g}: expected a duration "
               "between 0s and 10m")
        _check(bool(self.recording_path.strip()),
               "RECORDING_PATH is empty: expected a directory for recordings")

    @property
    def dev(self) -> bool:
        """True without a token secret: call rooms admit everyone as a guest."""
        return self.token_secret is None
