"""The call extension's configuration (seed 003's ``Config`` in Python naming).

Defaults follow seed 003 and its project: mesh rooms unless a room says otherwise, Opus
at 128 kbps, VP8/H.264 at 100 kbps-2.5 Mbps up to 1920x1080 at 30 fps, a 30 s signaling
timeout, and **auth required, guests refused**. An invalid configuration raises
:class:`~rtchub.config.ConfigError` with one line saying what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtchub.config import CallSettings, ConfigError
from rtchub.features.calls.rules import Topology, parse_topology

__all__ = ["AudioConfig", "CallsConfig", "TurnServer", "VideoConfig"]

# the server's variable names in CallSettings' messages -> this configuration's fields
_FIELD_NAMES = (("CALL_AUDIO_MAX_BITRATE", "audio.max_bitrate"),
                ("CALL_AUDIO_CODECS", "audio.codecs"), ("CALL_AUDIO", "audio.enabled"),
                ("CALL_VIDEO_MIN_BITRATE", "video.min_bitrate"),
                ("CALL_VIDEO_MAX_BITRATE", "video.max_bitrate"),
                ("CALL_VIDEO_MAX_WIDTH", "video.max_width"),
                ("CALL_VIDEO_MAX_HEIGHT", "video.max_height"),
                ("CALL_VIDEO_MAX_FPS", "video.max_frame_rate"),
                ("CALL_VIDEO_CODECS", "video.codecs"), ("CALL_VIDEO", "video.enabled"),
                ("CALL_SIGNALING_TIMEOUT", "signaling_timeout"),
                ("CALL_MAX_MEMBERS", "max_members"), ("CALL_TOKEN_SECRET", "token_secret"))


def _urls(value: str | tuple[str, ...], schemes: tuple[str, ...], what: str) -> tuple[str, ...]:
    urls = (value,) if isinstance(value, str) else tuple(value)
    if not urls:
        raise ConfigError(f"{what}: expected at least one URL")
    for url in urls:
        if not isinstance(url, str) or url.split(":", 1)[0] not in schemes:
            raise ConfigError(f"{what}: expected {' or '.join(s + ':' for s in schemes)} URLs, "
                              f"got {str(url)[:80]!r}")
    return urls


@dataclass(frozen=True, slots=True)
class TurnServer:
    """A TURN server: its URLs, user name and credential."""

    urls: str | tuple[str, ...]
    username: str
    credential: str

    def __post_init__(self) -> None:
        _urls(self.urls, ("turn", "turns"), "TurnServer.urls")
        if not self.username or not self.credential:
            raise ConfigError("TurnServer: expected a username and a credential")


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """Audio in call rooms: codecs in order of preference and the bitrate cap (bits/s)."""

    enabled: bool = True
    codecs: tuple[str, ...] = ("opus",)
    max_bitrate: int = 128_000


@dataclass(frozen=True, slots=True)
class VideoConfig:
    """Video in call rooms: codecs, the bitrate range (bits/s) and the largest frames."""

    enabled: bool = True
    codecs: tuple[str, ...] = ("VP8", "H264")
    min_bitrate: int = 100_000
    max_bitrate: int = 2_500_000
    max_width: int = 1920
    max_height: int = 1080
    max_frame_rate: int = 30


@dataclass(frozen=True, slots=True)
class CallsConfig:
    """Everything the extension is built with; validated on construction.

    ``topology`` is what :meth:`~.extension.CallsExtension.create_call_room` uses when a
    room names none. ``require_auth`` guards joins over the wire (the browser app's
    call rooms and forge's endpoint) with join tokens signed with ``token_secret``;
    without a secret nobody can present a valid token, so only guests could join, and
    only when ``allow_guests``. ``require_auth=False`` is a dev server: everyone joins
    as a guest. Joins made from Python (:meth:`~.room.CallRoom.join_call`) are the
    application's own and are not checked. ``recording_path`` None refuses recording.
    """

    topology: Topology | str = Topology.MESH
    stun_servers: tuple[str, ...] = ()
    turn_servers: tuple[TurnServer, ...] = ()
    audio: AudioConfig = field(default_factory=AudioConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    require_auth: bool = True
    allow_guests: bool = False
    token_secret: str | None = None
    recording_path: str | None = None
    signaling_timeout: float = 30.0
    max_members: int = 50

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "topology", parse_topology(self.topology))
        except ValueError:
            raise ConfigError(f"topology: expected 'mesh' or 'sfu', got "
                              f"{str(self.topology)[:40]!r}") from None
        object.__setattr__(self, "stun_servers", tuple(self.stun_servers))
        object.__setattr__(self, "turn_servers", tuple(self.turn_servers))
        for url in self.stun_servers:
            _urls(url, ("stun", "stuns"), "stun_servers")
        for turn in self.turn_servers:
            if not isinstance(turn, TurnServer):
                raise ConfigError("turn_servers: expected TurnServer values")
        if not self.require_auth and self.token_secret:
            raise ConfigError("token_secret is set but require_auth is False: expected "
                              "one or the other")
        self.settings()  # every media limit, checked once

    def settings(self) -> CallSettings:
        """The same limits as the server's ``CALL_*`` settings (raises ConfigError naming
        this configuration's fields)."""
        try:
            return self._settings()
        except ConfigError as exc:
            message = str(exc)
            for env, name in _FIELD_NAMES:
                message = message.replace(env, name)
            raise ConfigError(message) from None

    def _settings(self) -> CallSettings:
        audio, video = self.audio, self.video
        return CallSettings(
            token_secret=self.token_secret, allow_guests=self.allow_guests,
            audio_enabled=audio.enabled, audio_codecs=tuple(audio.codecs),
            audio_max_bitrate=audio.max_bitrate, video_enabled=video.enabled,
            video_codecs=tuple(video.codecs), video_min_bitrate=video.min_bitrate,
            video_max_bitrate=video.max_bitrate, video_max_width=video.max_width,
            video_max_height=video.max_height, video_max_fps=video.max_frame_rate,
            signaling_timeout=self.signaling_timeout, max_members=self.max_members,
            recording_path=self.recording_path or "recordings")

    def ice_servers(self) -> list[dict[str, Any]]:
        """The STUN and TURN servers as an RTCConfiguration's ``iceServers``."""
        servers: list[dict[str, Any]] = [{"urls": url} for url in self.stun_servers]
        for turn in self.turn_servers:
            urls = [turn.urls] if isinstance(turn.urls, str) else list(turn.urls)
            servers.append({"urls": urls, "username": turn.username,
                            "credential": turn.credential})
        return servers
