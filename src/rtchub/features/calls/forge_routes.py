"""Call rooms' settings applied to the mounted call service, and forge's endpoint.

:func:`configure` gives the call service (``features/calls/routes.py`` mounts it) what
the ``CALL_*`` settings say: join tokens (``CALL_TOKEN_SECRET``, ``CALL_ALLOW_GUESTS``),
codecs, bitrates and the signaling timeout of the SFU, and ``RECORDING_PATH``.
:func:`setup` mounts xraph/forge's signaling dialect at ``/webrtc/signal/{roomID}``
(:mod:`.forge`). Both run after the call feature's own setup.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from rtchub.features.calls.auth import TokenAuthorizer
from rtchub.features.calls.configure import auth_policy, media_config
from rtchub.features.calls.forge import FORGE_PATH, ForgeDialect
from rtchub.features.calls.routes import CALL_MEDIA, CALLS
from rtchub.net.http import HUB
from rtchub.net.router import ROUTER, Endpoint
from rtchub.wire.webrtc import SdpLimits

__all__ = ["FORGE", "configure", "setup"]

FORGE = web.AppKey("forge", ForgeDialect)


def configure(app: web.Application) -> None:
    """Apply the call settings to the call service and its media plane."""
    config = app[HUB].config
    app[CALLS].authorizer = TokenAuthorizer(auth_policy(config.calls))
    media = app[CALL_MEDIA]
    media.config = media_config(config)
    media.recordings = Path(config.calls.recording_path)


def setup(app: web.Application) -> None:
    """Mount forge's dialect on ``/webrtc/signal/{roomID}``."""
    limits = app[HUB].config.limits
    dialect = ForgeDialect(app[CALLS], SdpLimits(limits.sdp_max_bytes, limits.sdp_max_media),
                           limits.max_id_length)
    app[FORGE] = dialect
    app[ROUTER].add(Endpoint(FORGE_PATH, (dialect,), parse_query=dialect.parse_query))
