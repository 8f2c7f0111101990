"""The two servers :mod:`benchmarks.sfu_forwarding` compares, each run as its own process.

- ``sfu``: rtchub's media plane as the call feature will use it: one
  :class:`~rtchub.media.sfu.SfuPeer` per participant, every participant
  subscribed to every other participant's tracks, RTP forwarded as bytes.
- ``relay``: what aiortc offers out of the box: ``MediaRelay`` hands each
  publisher's decoded frames to every subscriber, whose sender encodes them again
  (one decode per publisher, one VP8 encode per subscriber).

Both speak one benchmark-only signaling dialect over a WebSocket per
participant (JSON): ``join`` {id, publish, subscribe, layer}; ``offer``/``answer``
{sdp} in either direction; ``ignored`` when the server sets a client offer
aside (glare). ``GET /stats`` returns the server's own counters.

A simulcast publisher's subscribers get the layer their ``join`` names (0, 1, 2:
``set_quality`` low, medium, high), or the top one. ``sfu adaptive`` also runs
adaptive quality as the call feature does: one
:class:`~rtchub.media.sfu.adaptive.AdaptationDriver` on the loop's clock drives
every active simulcast subscription (its REMB share as the link; the layer asked
for is the ceiling) and caps its publisher's REMB when nobody needs the top layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.rtcconfiguration import RTCBundlePolicy

from rtchub.base.clock import LoopClock
from rtchub.media import aiortc_adapter
from rtchub.media.fanout import ForwardingStats
from rtchub.media.sfu import (
    PublishedTrack,
    SfuMediaConfig,
    SfuPeer,
    Subscription,
    SubscriptionState,
)
from rtchub.media.sfu.adaptive import AdaptationDriver, SimulcastControl, SubscriberLink

__all__ = ["run_server"]

LOOPBACK = ("127.0.0.1",)
BUFFER = 2 * 1024 * 1024  # the SFU's default socket buffers, for MediaRelay too
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SfuServer:
    """Participants on SfuPeers; everyone who subscribes gets every other track."""

    def __init__(self, adaptive: bool = False) -> None:
        self.stats = ForwardingStats()
        self.config = SfuMediaConfig(node_ips=LOOPBACK, video_max_bitrate=2_500_000)
        self.peers: dict[str, SfuPeer] = {}
        self.subscribers: dict[str, int | None] = {}  # participant -> the layer it asked for
        self.tracks: list[PublishedTrack] = []
        self.driver = AdaptationDriver(LoopClock()) if adaptive else None

    def subscribe(self, peer: SfuPeer, track: PublishedTrack) -> None:
        """``peer`` receives ``track``, at the layer it asked for; adaptation follows it."""
        subscription = peer.subscribe(track)
        subscription.layer_ceiling = self.subscribers.get(peer.participant_id)
        if self.driver is not None:
            subscription.on_state_change = self.follow

    def follow(self, subscription: Subscription) -> None:
        """Adaptation drives an active simulcast subscription (as features/calls does)."""
        driver = self.driver
        if driver is None:
            return
        key = (subscription.subscriber_id, subscription.track.track_id)
        downtrack = subscription.downtrack
        if (subscription.state is not SubscriptionState.ACTIVE or downtrack is None
                or downtrack.layers is None or not downtrack.uplink.simulcast):
            driver.remove(key)
            return
        control = SimulcastControl(downtrack)
        driver.add(key, control, lambda: SubscriberLink(control.estimate),
                   subscription.track.track_id)

    def counters(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for peer in self.peers.values():
            for sub in peer.subscriptions:
                key = sub.state.value + ("" if sub.error is None else f" ({sub.error})")
                states[key] = states.get(key, 0) + 1
        return {"forwarded": self.stats.packets_forwarded, "received": self.stats.packets_in,
                "lost_in": self.stats.lost_in,
                "participants": len(self.peers), "tracks": len(self.tracks),
                "subscriptions": states, "gated": self.stats.packets_gated,
                "connections": sorted(p.connection_state for p in self.peers.values()),
                "signaling": sorted(p.signaling_state for p in self.peers.values())}

    def join(self, ident: str, send: Send) -> SfuPeer:
        if ident in self.peers:
            raise ValueError(f"participant {ident!r} is already here")
        async def on_offer(sdp: str) -> None:
            await send({"type": "offer", "sdp": sdp})

        peer = SfuPeer(ident, self.config, on_offer, stats=self.stats)
        self.peers[ident] = peer

        def published(track: PublishedTrack) -> None:
            self.tracks = [t for t in self.tracks if not t.ended]
            self.tracks.append(track)
            driver = self.driver
            if driver is not None:
                track.uplink.cap_source = lambda: driver.cap_for(track.track_id)
            for other in self.subscribers:
                if other != ident:
                    self.subscribe(self.peers[other], track)

        peer.on_track_published = published
        return peer

    def start_receiving(self, peer: SfuPeer, layer: int | None) -> None:
        """Subscribe ``peer`` to every track, now and later, at ``layer`` of a simulcast
        track (None: the top). (A publisher starts after its first offer is answered:
        the generator's clients are not polite peers.)"""
        self.subscribers[peer.participant_id] = layer
        for track in self.tracks:
            if track.publisher_id != peer.participant_id and not track.ended:
                self.subscribe(peer, track)

    async def handle(self, ws: web.WebSocketResponse) -> None:
        peer: SfuPeer | None = None
        subscribe = False
        layer: int | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = msg.json()
                if data["type"] == "join":
                    peer = self.join(data["id"], ws.send_json)
                    subscribe = data["subscribe"]
                    layer = data.get("layer")
                    if subscribe and not data["publish"]:
                        self.start_receiving(peer, layer)
                elif data["type"] == "offer" and peer is not None:
                    answer = await peer.accept_offer(data["sdp"])
                    await ws.send_json({"type": "ignored"} if answer is None
                                       else {"type": "answer", "sdp": answer})
                    if subscribe and peer.participant_id not in self.subscribers:
                        self.start_receiving(peer, layer)
                elif data["type"] == "answer" and peer is not None:
                    await peer.accept_answer(data["sdp"])
        finally:
            if peer is not None:
                if self.peers.get(peer.participant_id) is peer:
                    del self.peers[peer.participant_id]
                    self.subscribers.pop(peer.participant_id, None)
                await peer.close()


class RelayServer:
    """aiortc's MediaRelay: each client gets one peer connection per direction."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.sources: list[Any] = []
        self.pcs: set[RTCPeerConnection] = set()
        self.sent = 0

    def counters(self) -> dict[str, Any]:
        return {"participants": len(self.pcs), "tracks": len(self.sources)}

    async def handle(self, ws: web.WebSocketResponse) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pcs.add(pc)
        mine: list[Any] = []

        def arrived(track: Any) -> None:
            mine.append(track)
            self.sources.append(track)

        pc.on("track", arrived)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = msg.json()
                if data["type"] == "offer":  # a publisher: answer recvonly
                    await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                    aiortc_adapter.configure_ice(pc, LOOPBACK, None, BUFFER)
                    await pc.setLocalDescription(await pc.createAnswer())
                    await ws.send_json({"type": "answer", "sdp": pc.localDescription.sdp})
                elif data["type"] == "join" and data["subscribe"]:  # a viewer: offer the tracks
                    for source in self.sources:
                        pc.addTransceiver(self.relay.subscribe(source), direction="sendonly")
                    aiortc_adapter.configure_ice(pc, LOOPBACK, None, BUFFER)
                    await pc.setLocalDescription(await pc.createOffer())
                    await ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
                elif data["type"] == "answer":
                    await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
        finally:
            self.pcs.discard(pc)
            for track in mine:
                self.sources.remove(track)
            await pc.close()


def run_server(kind: str, port: int, adaptive: bool = False) -> None:
    """Serve ``kind`` ("sfu" or "relay") on 127.0.0.1:``port`` until terminated; an
    ``adaptive`` SFU runs adaptive quality."""
    logging.basicConfig(level=logging.WARNING)
    server: SfuServer | RelayServer = SfuServer(adaptive) if kind == "sfu" else RelayServer()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        with contextlib.suppress(ConnectionError):
            await server.handle(ws)
        return ws

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(server.counters())

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/stats", stats)
    loop = uvloop.new_event_loop()  # as rtchub serve runs
    asyncio.set_event_loop(loop)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True,
                shutdown_timeout=1.0, loop=loop)


if __name__ == "__main__":  # started by sfu_forwarding.py
    run_server(sys.argv[1], int(sys.argv[2]), sys.argv[3:] == ["adaptive"])
