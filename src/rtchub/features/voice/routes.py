"""The voice broadcast feature (seed 002): what it mounts on a server.

The voice dialect on ``/ws`` (beside rooms) and alone on ``/ws/voice``; ``/health`` and
the ``/stream/*`` MP3 routes (also on the ``STREAM_ADDR`` listener); seed 002's JSON view
of ``/metrics``; the Prometheus series; and every peer connection closed on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from rtchub.base.connection import Address
from rtchub.features.voice.events import EVENTS, MEDIA, NODE_EVENTS
from rtchub.features.voice.handler import VoiceDialect
from rtchub.features.voice.http import BROADCASTS, VOICE, add_health_route, add_stream_routes
from rtchub.features.voice.live import Broadcasts, NodeRelay
from rtchub.features.voice.rules import RECORDS
from rtchub.features.voice.service import VoiceService
from rtchub.media import aiortc_adapter
from rtchub.net.http import HUB, rate_limit
from rtchub.net.ops import JSON_METRICS
from rtchub.net.router import ROUTER
from rtchub.wire.webrtc import SdpLimits

__all__ = ["setup", "stream_only_app"]

log = logging.getLogger("rtchub.voice")


def setup(app: web.Application) -> None:
    """Mount the voice feature on ``app``."""
    hub = app[HUB]
    limits = hub.config.limits
    courier = hub.courier
    hub.codec.register(*RECORDS, *EVENTS, *NODE_EVENTS)
    service = VoiceService(courier, limits, hub.clock, hub.backplane.store, courier.node)
    live = Broadcasts(hub.config, hub.changes.notify, courier, courier.node)
    service.on_ended = live.drop_relayed
    # other nodes' voice reaches this node at (node, MEDIA): demands, packets, counts
    courier.register(MEDIA, (NodeRelay(service, live),), dict.fromkeys(NODE_EVENTS, 0))

    async def sweep_node(node: str, alive: Callable[[Address], bool]) -> None:
        live.forget_node(node)
        await service.sweep_node(node, alive)

    hub.backplane.on_sweep(sweep_node)
    app[VOICE] = service
    app[BROADCASTS] = live
    dialect = VoiceDialect(service, live, hub.tasks, hub.stats, hub.clock,
                           SdpLimits(limits.sdp_max_bytes, limits.sdp_max_media),
                           limits.voice_answer_timeout, offer_rate=limits.voice_offer_rate,
                           candidate_rate=limits.voice_candidate_rate)
    router = app[ROUTER]
    router.speak("/ws", dialect)
    router.speak("/ws/voice", dialect)
    add_health_route(app)
    add_stream_routes(app)
    _lifecycle(app, live)

    def seed_002_metrics() -> dict[str, object]:
        return {"uptime_seconds": int(hub.uptime()),
                "active_connections": len(hub.connections),
                "active_streams": len(service.streams),
                "total_audio_bytes": live.media.bytes_in,
                "webrtc_available": live.webrtc_available}

    app[JSON_METRICS] = seed_002_metrics
    _metrics(app, service, live)


def _metrics(app: web.Application, service: VoiceService, live: Broadcasts) -> None:
    stats, media = app[HUB].stats, live.media
    stats.add_gauges("rtchub_voice_streams", "Live voice streams.",
                     lambda: {"": float(len(service.streams))})
    stats.add_gauges("rtchub_voice_receivers", "WebRTC receivers of voice streams.",
                     lambda: {"": float(live.receivers())})
    stats.add_gauges("rtchub_voice_peer_connections",
                     "The server's own WebRTC peer connections open now.",
                     lambda: {"": float(live.peers.open_peers)})
    stats.add_gauges("rtchub_mp3_listeners", "HTTP MP3 listeners.",
                     lambda: {"": float(live.mp3_listeners())})
    stats.add_counters("rtchub_voice_relayed_packets", "RTP packets of voice streams "
                       "relayed between nodes, by direction.", "direction",
                       lambda: {"in": float(live.relayed_in), "out": float(live.relayed_out)})
    stats.add_counters("rtchub_media_packets", "RTP packets by stage.", "stage",
                       lambda: {"received": float(media.packets_in),
                                "forwarded": float(media.packets_forwarded),
                                "gated": float(media.packets_gated)})
    stats.add_counters("rtchub_media_fanout_seconds",
                       "Time from a sender's packet arriving to its last copy sent "
                       "(sum over packets: divide by rtchub_media_packets_total received).",
                       "", lambda: {"": media.fanout_seconds})
    stats.add_gauges("rtchub_media_fanout_max_seconds", "Longest fan-out of one packet so far.",
                     lambda: {"": media.fanout_max})
    stats.add_counters("rtchub_media_bytes", "RTP payload bytes received from senders.",
                       "", lambda: {"": float(media.bytes_in)})
    stats.add_counters("rtchub_media_feedback", "RTCP feedback handled, by kind.", "kind",
                       lambda: {"nack_hit": float(media.nack_hits),
                                "nack_miss": float(media.nack_misses),
                                "retransmitted": float(media.retransmitted),
                                "keyframe_request_in": float(media.keyframe_requests_in),
                                "keyframe_request_up": float(media.keyframe_requests)})


def _lifecycle(app: web.Application, live: Broadcasts) -> None:
    async def startup(app: web.Application) -> None:
        try:
            await aiortc_adapter.check_assumptions()
        except aiortc_adapter.AdapterBroken:
            log.exception("WebRTC media is unavailable")
            live.webrtc_available = False

    async def shutdown(app: web.Application) -> None:
        live.end_listeners()

    async def cleanup(app: web.Application) -> None:
        await live.close()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)


def stream_only_app(main: web.Application) -> web.Application:
    """The STREAM_ADDR app: only ``/stream/*``, sharing the main app's hub and streams."""
    hub = main[HUB]
    app = web.Application(middlewares=[rate_limit(frozenset())])
    app[HUB] = hub
    app[VOICE] = main[VOICE]
    live = app[BROADCASTS] = main[BROADCASTS]

    async def shutdown(app: web.Application) -> None:
        live.end_listeners()

    app.on_shutdown.append(shutdown)
    add_stream_routes(app)
    return app
