"""From the server's call settings to what the SFU and the join check are built with.

:func:`media_config` maps :class:`~rtchub.config.CallSettings` (the ``CALL_*`` settings)
and the server's WebRTC addresses onto :class:`~rtchub.media.sfu.SfuMediaConfig`; a kind
switched off gets no codec, so every section of that kind is refused. :func:`auth_policy`
gives the :class:`~rtchub.features.calls.auth.AuthPolicy` a join goes through.
"""

from __future__ import annotations

from rtchub.config import CallSettings, Config
from rtchub.features.calls.auth import AuthPolicy
from rtchub.media.sfu import SfuMediaConfig

__all__ = ["auth_policy", "media_config"]


def media_config(config: Config) -> SfuMediaConfig:
    """The SFU's media configuration for ``config``: codecs, bitrate caps, addresses, timing.

    The frame size and rate limits (``CALL_VIDEO_MAX_WIDTH/HEIGHT/FPS``) are what the
    server asks of publishers in its answers (VP8 ``max-fs``/``max-fr``).
    """
    calls = config.calls
    return SfuMediaConfig(
        audio_codecs=calls.audio_codecs if calls.audio_enabled else (),
        video_codecs=calls.video_codecs if calls.video_enabled else (),
        audio_max_bitrate=calls.audio_max_bitrate,
        video_min_bitrate=calls.video_min_bitrate,
        video_max_bitrate=calls.video_max_bitrate,
        video_max_width=calls.video_max_width,
        video_max_height=calls.video_max_height,
        video_max_fps=calls.video_max_fps,
        node_ips=config.node_ips,
        udp_ports=config.udp_ports,
        consent_timeout=config.consent_timeout,
        signaling_timeout=calls.signaling_timeout,
    )


def auth_policy(calls: CallSettings) -> AuthPolicy:
    """How call-room joins are admitted: dev mode without a secret, else tokens (and guests
    when ``CALL_ALLOW_GUESTS``)."""
    return AuthPolicy(secret=calls.token_secret, allow_guests=calls.allow_guests)
