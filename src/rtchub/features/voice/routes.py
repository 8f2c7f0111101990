"""The voice broadcast feature (seed 002): one ``setup(app, hub)`` wires it in.

It builds the :class:`~rtchub.features.voice.service.VoiceService`, speaks the
voice dialect on ``/ws`` (beside rooms) and alone on ``/ws/voice``, serves
``/health`` and the ``/stream/*`` MP3 routes, installs seed 002's JSON metrics
view and the Prometheus series, and closes every peer connection on shutdown.
"""

from __future__ import annotations

import logging

from aiohttp import web

from rtchub.features.voice.handler import VoiceDialect
from rtchub.features.voice.http import VOICE, add_health_route, add_stream_routes
from rtchub.features.voice.service import VoiceService
from rtchub.hub import Hub
from rtchub.media import aiortc_adapter
from rtchub.net.http import HUB, rate_limit

__all__ = ["setup", "stream_only_app"]

log = logging.getLogger("rtchub.voice")


def setup(app: web.Application, hub: Hub) -> None:
    """Register the voice dialect, routes, metrics and lifecycle hooks."""
    service = VoiceService(hub.config, hub.stats, hub.tasks, hub.clock, hub.changes.notify)
    app[VOICE] = service
    hub.add_dialect("voice", VoiceDialect(service, hub.tasks, hub.stats), ("/ws", "/ws/voice"))
    add_health_route(app)
    add_stream_routes(app)
    _lifecycle(app, service)
    hub.json_metrics = lambda: {
        "uptime_seconds": int(hub.uptime()),
        "active_connections": len(hub.connections),
        "active_streams": len(service.streams),
        "total_audio_bytes": service.media.bytes_in,
        "webrtc_available": service.webrtc_available,
    }
    media = service.media
    hub.stats.add_gauges("rtchub_voice_streams", "Live voice streams.",
                         lambda: {"": float(len(service.streams))})
    hub.stats.add_gauges("rtchub_voice_receivers", "WebRTC receivers of voice streams.",
                         lambda: {"": float(service.receivers())})
    hub.stats.add_gauges("rtchub_voice_peer_connections",
                         "The server's own WebRTC peer connections open now.",
                         lambda: {"": float(service.peers.open_peers)})
    hub.stats.add_gauges("rtchub_mp3_listeners", "HTTP MP3 listeners.",
                         lambda: {"": float(service.mp3_listeners())})
    hub.stats.add_counters("rtchub_media_packets", "RTP packets by stage.", "stage",
                           lambda: {"received": float(media.packets_in),
                                    "forwarded": float(media.packets_forwarded),
                                    "gated": float(media.packets_gated)})
    hub.stats.add_counters("rtchub_media_fanout_seconds",
                           "Time from a sender's packet arriving to its last copy sent "
                           "(sum over packets: divide by rtchub_media_packets_total received).",
                           "", lambda: {"": media.fanout_seconds})
    hub.stats.add_gauges("rtchub_media_fanout_max_seconds",
                         "Longest fan-out of one packet so far.",
                         lambda: {"": media.fanout_max})
    hub.stats.add_counters("rtchub_media_bytes", "RTP payload bytes received from senders.",
                           "", lambda: {"": float(media.bytes_in)})
    hub.stats.add_counters("rtchub_media_feedback", "RTCP feedback handled, by kind.", "kind",
                           lambda: {"nack_hit": float(media.nack_hits),
                                    "nack_miss": float(media.nack_misses),
                                    "retransmitted": float(media.retransmitted),
                                    "keyframe_request_in": float(media.keyframe_requests_in),
                                    "keyframe_request_up": float(media.keyframe_requests)})


def _lifecycle(app: web.Application, service: VoiceService) -> None:
    async def startup(app: web.Application) -> None:
        try:
            await aiortc_adapter.check_assumptions()
        except aiortc_adapter.AdapterBroken:
            log.exception("WebRTC media is unavailable")
            service.webrtc_available = False

    async def shutdown(app: web.Application) -> None:
        service.end_listeners()

    async def cleanup(app: web.Application) -> None:
        await service.close()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)


def stream_only_app(main: web.Application) -> web.Application:
    """The STREAM_ADDR app: only ``/stream/*``, sharing the main app's hub and streams."""
    app = web.Application(middlewares=[rate_limit])
    app[HUB] = main[HUB]
    service = main[VOICE]
    app[VOICE] = service

    async def shutdown(app: web.Application) -> None:
        service.end_listeners()

    app.on_shutdown.append(shutdown)
    add_stream_routes(app)
    return app
