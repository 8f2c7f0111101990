"""Forge's endpoint on the call service that ``features/calls/routes.py`` mounts.

:func:`setup` mounts xraph/forge's signaling dialect at ``/webrtc/signal/{roomID}``
(:mod:`.forge`). It runs after the call feature's own setup.
"""

from __future__ import annotations

from aiohttp import web

from rtchub.features.calls.forge import FORGE_PATH, ForgeDialect
from rtchub.features.calls.routes import CALL_JOINS, CALLS
from rtchub.net.http import HUB
from rtchub.net.router import ROUTER, Endpoint
from rtchub.wire.webrtc import SdpLimits

__all__ = ["FORGE", "setup"]

FORGE = web.AppKey("forge", ForgeDialect)


def setup(app: web.Application) -> None:
    """Mount forge's dialect on ``/webrtc/signal/{roomID}``."""
    limits = app[HUB].config.limits
    dialect = ForgeDialect(app[CALLS], SdpLimits(limits.sdp_max_bytes, limits.sdp_max_media),
                           limits.max_id_length)
    dialect.place = app[CALL_JOINS].place        # one SFU room per cluster, as on /ws
    dialect.vacated = app[CALL_JOINS].vacated
    app[FORGE] = dialect
    app[ROUTER].add(Endpoint(FORGE_PATH, (dialect,), parse_query=dialect.parse_query))
