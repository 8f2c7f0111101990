"""The call-rooms feature (seed 003): what it mounts on a server.

The call service and its SFU media plane, kept on the app under :data:`CALLS` and
:data:`CALL_MEDIA`. Tests and the Python API set ``app[CALLS].authorizer`` (join tokens)
and ``app[CALL_MEDIA].recordings`` (where recordings go) before the server starts.
"""

from __future__ import annotations

from aiohttp import web

from rtchub.features.calls.events import EVENTS
from rtchub.features.calls.live import SfuMedia
from rtchub.features.calls.rules import RECORDS
from rtchub.features.calls.service import CallService
from rtchub.media.sfu import SfuMediaConfig
from rtchub.net.http import HUB

__all__ = ["CALLS", "CALL_MEDIA", "setup"]

CALLS = web.AppKey("calls", CallService)
CALL_MEDIA = web.AppKey("call_media", SfuMedia)


def setup(app: web.Application) -> None:
    """Mount the call-rooms feature on ``app``."""
    hub = app[HUB]
    hub.codec.register(*RECORDS, *EVENTS)
    media = SfuMedia(SfuMediaConfig(node_ips=hub.config.node_ips,
                                    udp_ports=hub.config.udp_ports))
    calls = CallService(media, hub.courier, max_members=hub.config.limits.max_room_members)
    app[CALL_MEDIA] = media
    app[CALLS] = calls
