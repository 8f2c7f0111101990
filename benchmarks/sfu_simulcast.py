"""A simulcast publisher for :mod:`benchmarks.sfu_forwarding`, sending as Chromium does.

aiortc cannot send simulcast, so the generator's publisher is an aiortc peer
connection whose offer is made to look like Chromium's (tests/media/
chromium_simulcast_offer.sdp): VP8 only, no ``a=ssrc`` lines, the RID and
repaired-RID header extensions and ``a=rid:q|h|f send`` with
``a=simulcast:send q;h;f``. Its own sender stays silent; once the connection is
up, three pre-encoded VP8 clips (640x360, 320x180 and 160x90 by default, a
keyframe every 2 s in all three) are packetized by aiortc's VP8 packetizer (one
picture id counter per layer, as each of a browser's encoders has) and sent on
three SSRCs through the connection's SRTP, paced like a camera at 30 fps. The
first packets of each SSRC carry the MID and RID extensions, as a browser's do
until the SSRC is acknowledged; the server learns the layers from them.

Also here, what only the simulcast scenarios of :mod:`benchmarks.sfu_forwarding`
need: the layers' clips, the publisher's offer and its sending once connected, and
the REMB its subscribers send.
"""

from __future__ import annotations

import asyncio
import fractions
import random
import re
import time
from collections.abc import Callable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder

from benchmarks.sfu_clip import clip_rate, encode_clip
from rtchub.media import aiortc_adapter
from rtchub.media.sfu.rtp import FIXED, RID_URI, RRID_URI

__all__ = ["RIDS", "SIMULCAST_REMB", "SilentTrack", "describe_layers", "layer_sizes",
           "offer_layers", "publish_layers", "send_layers", "simulcast_clips", "simulcast_offer"]

RIDS = ("q", "h", "f")
RID_ID, RRID_ID = 10, 11  # ids aiortc's own offers leave free
TAGGED = 100  # packets of each SSRC that carry MID and RID
# a simulcast subscriber says it has room for the top layer (the config's max video
# bitrate), so adaptation keeps each at the layer it asked for, as with adaptation off
SIMULCAST_REMB = 2_500_000


def layer_sizes(width: int, height: int, bitrate: int) -> list[tuple[int, int, int]]:
    """(width, height, bits/s) of the q, h and f layers for a top layer of that size and
    rate (a quarter and a half of each side, as browsers scale)."""
    return [(width // 4, height // 4, bitrate // 6), (width // 2, height // 2, bitrate // 3),
            (width, height, bitrate)]


class SilentTrack(MediaStreamTrack):
    """A video track that never yields a frame: the transceiver is there for the SDP and the
    transport, the layers are sent by :func:`send_layers`."""

    kind = "video"

    async def recv(self) -> Any:
        await asyncio.get_running_loop().create_future()  # never


def simulcast_offer(sdp: str) -> tuple[str, int, int]:
    """aiortc's offer for one sendonly video section (VP8 preferred) rewritten as
    Chromium's simulcast offer; also its VP8 payload type and its MID extension id."""
    lines = [line for line in sdp.split("\r\n") if not line.startswith(("a=ssrc:",
                                                                         "a=ssrc-group:"))]
    pt = next(int(m.group(1)) for line in lines
              if (m := re.match(r"a=rtpmap:(\d+) VP8/90000", line)))
    mid_id = next(int(m.group(1)) for line in lines
                  if (m := re.match(r"a=extmap:(\d+) urn:ietf:params:rtp-hdrext:sdes:mid$",
                                    line)))
    last_ext = max(i for i, line in enumerate(lines) if line.startswith("a=extmap:"))
    lines[last_ext + 1:last_ext + 1] = [f"a=extmap:{RID_ID} {RID_URI}",
                                        f"a=extmap:{RRID_ID} {RRID_URI}"]
    end = len(lines) - 1 if lines[-1] == "" else len(lines)
    lines[end:end] = [*(f"a=rid:{rid} send" for rid in RIDS),
                      f"a=simulcast:send {';'.join(RIDS)}"]
    return "\r\n".join(lines), pt, mid_id


def _extensions(mid_id: int, rid: str) -> bytes:
    body = bytes([(mid_id << 4)]) + b"0" + bytes([(RID_ID << 4) | (len(rid) - 1)]) + rid.encode()
    body += b"\x00" * (-len(body) % 4)
    return b"\xbe\xde" + (len(body) // 4).to_bytes(2, "big") + body


async def send_layers(wire: aiortc_adapter.SrtpWire, clips: list[list[bytes]], pt: int,
                      mid_id: int) -> None:
    """Send the clips as simulcast layers (lowest first) until cancelled, 30 frames a second;
    a frame whose time slot passed while the loop was busy is skipped, not sent late."""
    encoders = [Vp8Encoder() for _ in clips]
    ssrcs = [random.randrange(1, 1 << 32) for _ in clips]
    seqs = [random.randrange(1 << 16) for _ in clips]
    heads = [_extensions(mid_id, rid) for rid in RIDS[:len(clips)]]
    counts = [0] * len(clips)
    start = time.monotonic()
    slot = sent = 0
    while True:
        now = time.monotonic()
        slot = max(slot + 1, int((now - start) * 30))
        await asyncio.sleep(max(0.0, start + slot / 30 - now))
        for index, clip in enumerate(clips):
            packet = av.Packet(clip[sent % len(clip)])
            packet.pts = slot * 3000
            packet.time_base = fractions.Fraction(1, 90000)
            payloads, timestamp = encoders[index].pack(packet)
            for j, payload in enumerate(payloads):
                second = (0x80 if j == len(payloads) - 1 else 0) | pt
                seq = seqs[index] = (seqs[index] + 1) & 0xFFFF
                if counts[index] < TAGGED:
                    data = (FIXED.pack(0x90, second, seq, timestamp, ssrcs[index])
                            + heads[index] + payload)
                else:
                    data = FIXED.pack(0x80, second, seq, timestamp, ssrcs[index]) + payload
                counts[index] += 1
                wire.send_rtp(data)
        sent += 1


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
