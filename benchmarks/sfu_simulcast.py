"""The simulcast scenarios' part of :mod:`benchmarks.sfu_forwarding`.

The publisher itself (an aiortc peer whose offer looks like Chromium's simulcast
offer, three pre-encoded VP8 layers sent on three SSRCs through its SRTP, paced
like a camera) is :mod:`tests.media.simulcast_publisher`, shared with the suite's
adaptation test. Here: the layers' clips, the publisher's offer and its sending
once connected, and the REMB its subscribers send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiortc import RTCPeerConnection, RTCRtpSender
from tests.media.simulcast_publisher import (
    RIDS,
    SilentTrack,
    layer_sizes,
    send_layers,
    simulcast_offer,
)

from benchmarks.sfu_clip import clip_rate, encode_clip
from rtchub.media import aiortc_adapter

__all__ = ["RIDS", "SIMULCAST_REMB", "SilentTrack", "describe_layers", "layer_sizes",
           "offer_layers", "publish_layers", "send_layers", "simulcast_clips", "simulcast_offer"]

# a simulcast subscriber says it has room for the top layer (the config's max video
# bitrate), so adaptation keeps each at the layer it asked for, as with adaptation off
SIMULCAST_REMB = 2_500_000


def simulcast_clips(width: int, height: int, top: list[bytes]) -> list[list[bytes]]:
    """The clips of the three layers, lowest first: ``top`` is the full-size one."""
    *lower, _ = layer_sizes(width, height, 1_000_000)
    return [encode_clip(width=w, height=h, bitrate=b) for w, h, b in lower] + [top]


def describe_layers(width: int, height: int, layers: list[list[bytes]]) -> str:
    """One line: each layer's size, bitrate and packets per second."""
    return "simulcast layers: " + ", ".join(
        f"{w}x{h} {sum(len(p) for p in c) * 8 / 2000:.0f} kbit/s {clip_rate(c):.0f} pkt/s"
        for (w, h, _), c in zip(layer_sizes(width, height, 1_000_000), layers, strict=True))


async def offer_layers(pc: RTCPeerConnection,
                       configure_ice: Callable[[], None]) -> tuple[str, int, int]:
    """Add the silent VP8 sender to ``pc``, apply aiortc's offer (after
    ``configure_ice``) and return it rewritten as :func:`simulcast_offer` does."""
    transceiver = pc.addTransceiver(SilentTrack(), direction="sendonly")
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                     if c.mimeType.lower() in ("video/vp8", "video/rtx")])
    configure_ice()
    await pc.setLocalDescription(await pc.createOffer())
    return simulcast_offer(pc.localDescription.sdp)


async def publish_layers(pc: RTCPeerConnection,
                         wire: Callable[[], aiortc_adapter.SrtpWire | None],
                         layers: list[list[bytes]], pt: int, mid_id: int) -> None:
    """Once ``pc`` is connected, send the simulcast layers through its SRTP (``wire``
    gives the participant's wire, made when the answer came, before the connection)."""
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def changed() -> None:
        if pc.connectionState == "connected":
            connected.set()

    await connected.wait()
    current = wire()
    if current is None:
        raise RuntimeError("the simulcast publisher has no wire")
    await send_layers(current, layers, pt, mid_id)
