"""The rooms feature (seed 000): what it mounts on a server.

Seed 000's dialect on ``/ws`` (beside voice) and alone on ``/ws/rooms``, the rooms
service over the backplane, and its gauges.
"""

from __future__ import annotations

from aiohttp import web

from rtchub.features.rooms.events import EVENTS
from rtchub.features.rooms.handler import RoomsDialect
from rtchub.features.rooms.rules import RECORDS
from rtchub.features.rooms.service import Rooms
from rtchub.net.http import HUB
from rtchub.net.router import ROUTER
from rtchub.wire.webrtc import SdpLimits

__all__ = ["ROOMS", "ROOMS_DIALECT", "setup"]

ROOMS = web.AppKey("rooms", Rooms)
ROOMS_DIALECT = web.AppKey("rooms_dialect", RoomsDialect)


def setup(app: web.Application) -> None:
    """Mount the rooms feature on ``app``."""
    hub = app[HUB]
    limits = hub.config.limits
    hub.codec.register(*RECORDS, *EVENTS)
    rooms = Rooms(hub.backplane.store, hub.courier, limits)
    hub.backplane.on_sweep(rooms.sweep_node)
    app[ROOMS] = rooms
    # a relay never parses the description: its size is bounded, its sections not counted
    dialect = RoomsDialect(rooms, hub.stats, SdpLimits(limits.sdp_max_bytes, None),
                           hub.clock, limits.id_probe_timeout)
    app[ROOMS_DIALECT] = dialect   # the app hands it the call rooms' part of a join
    router = app[ROUTER]
    router.speak("/ws", dialect)
    router.speak("/ws/rooms", dialect)
    hub.stats.add_gauges("rtchub_rooms", "Rooms open now.",
                         lambda: {"": float(rooms.counts()[0])})
    hub.stats.add_gauges("rtchub_room_members", "Room members now.",
                         lambda: {"": float(rooms.counts()[1])})
