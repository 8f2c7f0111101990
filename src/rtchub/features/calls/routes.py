"""The call-rooms feature (seed 003): what it mounts on a server.

The call service and its SFU media plane (kept on the app under :data:`CALLS` and
:data:`CALL_MEDIA`), the call-room frames on ``/ws`` and ``/ws/rooms`` beside the rooms
dialect, and :data:`CALL_JOINS`, the part of a rooms ``join`` that call rooms decide (the
app hands it to the rooms dialect). SFU rooms are placed on one node through the cluster
store (:class:`~rtchub.cluster.placement.Placement`). Tests and the Python API set
``app[CALLS].authorizer`` (join tokens) and ``app[CALL_MEDIA].recordings`` (where
recordings go) before the server starts; every call room closes at shutdown.
"""

from __future__ import annotations

from aiohttp import web

from rtchub.cluster import placement
from rtchub.features.calls.events import EVENTS
from rtchub.features.calls.handler import CallJoins, CallsDialect
from rtchub.features.calls.live import SfuMedia
from rtchub.features.calls.rules import RECORDS
from rtchub.features.calls.service import CallService
from rtchub.media.sfu import SfuMediaConfig
from rtchub.net.http import HUB
from rtchub.net.router import ROUTER

__all__ = ["CALLS", "CALL_JOINS", "CALL_MEDIA", "setup"]

CALLS = web.AppKey("calls", CallService)
CALL_MEDIA = web.AppKey("call_media", SfuMedia)
CALL_JOINS = web.AppKey("call_joins", CallJoins)


def setup(app: web.Application) -> None:
    """Mount the call-rooms feature on ``app``."""
    hub = app[HUB]
    limits = hub.config.limits
    hub.codec.register(*RECORDS, *EVENTS, *placement.RECORDS)
    media = SfuMedia(SfuMediaConfig(node_ips=hub.config.node_ips,
                                    udp_ports=hub.config.udp_ports))
    calls = CallService(media, hub.courier, max_members=limits.max_room_members)
    node = hub.courier.node
    rooms = placement.Placement(hub.backplane.store, node, "sfu")
    hub.backplane.on_sweep(rooms.sweep_node)
    app[CALL_MEDIA] = media
    app[CALLS] = calls
    app[CALL_JOINS] = CallJoins(calls, node, rooms.claim, rooms.release)
    dialect = CallsDialect(calls, limits.sdp_max_bytes)
    router = app[ROUTER]
    router.speak("/ws", dialect)
    router.speak("/ws/rooms", dialect)
    hub.stats.add_gauges("rtchub_call_rooms", "Call rooms on this node, by topology.",
                         lambda: _by_topology(calls))
    hub.stats.add_gauges("rtchub_call_participants", "Call-room participants on this node.",
                         lambda: {"": float(sum(len(r.participants) for r in calls.rooms()))})

    async def cleanup(app: web.Application) -> None:
        for room in list(calls.rooms()):
            await calls.delete_room(room.id)

    app.on_cleanup.append(cleanup)


def _by_topology(calls: CallService) -> dict[str, float]:
    counts = {"mesh": 0.0, "sfu": 0.0}
    for room in calls.rooms():
        counts[room.topology.value] += 1
    return counts
