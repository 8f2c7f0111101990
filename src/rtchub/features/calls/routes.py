"""The call-rooms feature (seed 003): what it mounts on a server.

The call service and its SFU media plane (kept on the app under :data:`CALLS` and
:data:`CALL_MEDIA`), the call-room frames on ``/ws`` and ``/ws/rooms`` beside the rooms
dialect, and :data:`CALL_JOINS`, the part of a rooms ``join`` that call rooms decide (the
app hands it to the rooms dialect). SFU rooms are placed on one node through the cluster
store (:class:`~rtchub.cluster.placement.Placement`). The ``CALL_*`` settings apply here:
join tokens (``CALL_TOKEN_SECRET``, ``CALL_ALLOW_GUESTS``), codecs, bitrates and the
signaling timeout of the SFU, ``CALL_MAX_MEMBERS`` and ``RECORDING_PATH``. Tests and the
Python API may still replace ``app[CALLS].authorizer`` and ``app[CALL_MEDIA].recordings``
before the server starts; every call room closes at shutdown.
"""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

from rtchub.cluster import placement
from rtchub.config import CallSettings
from rtchub.features.calls.adapting import CallAdaptation
from rtchub.features.calls.auth import TokenAuthorizer
from rtchub.features.calls.configure import auth_policy, media_config
from rtchub.features.calls.events import EVENTS
from rtchub.features.calls.handler import CallJoins, CallsDialect
from rtchub.features.calls.live import SfuMedia
from rtchub.features.calls.quality import QualityMonitor
from rtchub.features.calls.quality_rules import QualityThresholds
from rtchub.features.calls.rules import RECORDS
from rtchub.features.calls.service import CallService
from rtchub.media.sfu.adaptive import AdaptationDriver, AdaptivePolicy
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
    settings = hub.config.calls
    media = SfuMedia(media_config(hub.config))
    media.recordings = Path(settings.recording_path)
    quality = QualityMonitor(hub.clock, interval=settings.quality_interval,
                             thresholds=quality_thresholds(settings))
    media.quality = quality
    if settings.adaptive_quality:
        policy = AdaptivePolicy(up_after=settings.adaptive_up_after)
        media.adaptation = CallAdaptation(AdaptationDriver(hub.clock, policy), quality,
                                          stale_after=media.config.remb_stale_after)
    calls = CallService(media, hub.courier, max_members=settings.max_members)
    calls.authorizer = TokenAuthorizer(auth_policy(settings))
    node = hub.courier.node
    rooms = placement.Placement(hub.backplane.store, node, "sfu", hub.config.node_url)
    hub.backplane.on_sweep(rooms.sweep_node)

    async def claim(room: str) -> tuple[str, str]:
        placed = await rooms.claim(room)
        return placed.node, placed.url

    app[CALL_MEDIA] = media
    app[CALLS] = calls
    app[CALL_JOINS] = CallJoins(calls, node, claim, rooms.release, rooms.owner)
    dialect = CallsDialect(calls, limits.sdp_max_bytes)
    router = app[ROUTER]
    router.speak("/ws", dialect)
    router.speak("/ws/rooms", dialect)
    hub.stats.add_gauges("rtchub_call_rooms", "Call rooms on this node, by topology.",
                         lambda: _by_topology(calls))
    hub.stats.add_gauges("rtchub_call_participants", "Call-room participants on this node.",
                         lambda: {"": float(calls.participant_count())})

    for metric, unit, doc in _QUALITY_GAUGES:
        hub.stats.add_gauges(f"rtchub_call_quality_{metric}{unit}", doc,
                             functools.partial(_quality_figure, quality, metric), "room")

    async def cleanup(app: web.Application) -> None:
        for room in list(calls.rooms()):
            await calls.delete_room(room.id)
        quality.close()
        if media.adaptation is not None:
            media.adaptation.close()

    app.on_cleanup.append(cleanup)


_QUALITY_GAUGES = (
    ("score", "", "Mean connection quality score (0-100) of an SFU room's participants."),
    ("score_min", "", "Lowest connection quality score (0-100) in an SFU room."),
    ("packet_loss", "_percent", "Mean packet loss (worse direction) of a room's participants."),
    ("jitter", "_seconds", "Mean jitter (worse direction) of an SFU room's participants."),
    ("rtt", "_seconds", "Mean round-trip time of an SFU room's participants."),
    ("bitrate", "_bits_per_second", "Total bitrate through an SFU room's connections."),
    ("peers", "", "Participants of an SFU room whose quality is measured."),
)


def quality_thresholds(settings: CallSettings) -> QualityThresholds:
    """The quality monitor's warning thresholds from the ``CALL_QUALITY_*`` settings."""
    return QualityThresholds(packet_loss=settings.quality_max_loss,
                             jitter=settings.quality_max_jitter * 1000,
                             latency=settings.quality_max_rtt * 1000,
                             min_bitrate_kbps=settings.quality_min_bitrate / 1000)


def _quality_figure(quality: QualityMonitor, metric: str) -> dict[str, float]:
    return {room: figures[metric] for room, figures in quality.room_figures().items()
            if metric in figures}


def _by_topology(calls: CallService) -> dict[str, float]:
    # counted without making seated mesh rooms' records (calls.seats)
    return {topology: float(n) for topology, n in calls.room_counts().items()}
