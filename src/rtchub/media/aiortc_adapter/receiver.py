"""Hook 2, incoming RTP per receiver (the voice feature's path).

``RTCRtpReceiver._handle_rtp_packet`` is replaced on the instance by
:func:`tap_receiver` so packets go to rtchub, not to aiortc's jitter buffer and
decoder thread. Receiver statistics (for RTCP receiver reports) are still fed
through the receiver's private ``__remote_streams``. The SFU taps earlier, per
transport: see :mod:`rtchub.media.aiortc_adapter.wire`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc import rtcrtpreceiver as aiortc_receiver
from aiortc.rtp import RtpPacket

__all__ = ["PacketSink", "request_keyframe", "send_nack", "tap_receiver", "watch_receiver"]

RECEIVER_STREAMS = "_RTCRtpReceiver__remote_streams"
RECEIVER_CODECS = "_RTCRtpReceiver__codecs"

PacketSink = Callable[[RtpPacket, int], Awaitable[None]]


def tap_receiver(receiver: RTCRtpReceiver, sink: PacketSink) -> None:
    """Send every RTP packet ``receiver`` gets to ``sink`` instead of aiortc's decoder.

    Receiver statistics still see each packet, so aiortc's RTCP receiver reports
    keep flowing upstream.
    """
    streams: dict[int, Any] = getattr(receiver, RECEIVER_STREAMS)
    codecs: dict[int, Any] = getattr(receiver, RECEIVER_CODECS)
    statistics = aiortc_receiver.StreamStatistics

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        stats = streams.get(packet.ssrc)
        if stats is None:
            codec = codecs.get(packet.payload_type)
            if codec is None:
                return
            stats = streams[packet.ssrc] = statistics(codec.clockRate)
        stats.add(packet)
        await sink(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def watch_receiver(receiver: RTCRtpReceiver, observer: Callable[[RtpPacket], None]) -> None:
    """Show every RTP packet to ``observer`` before aiortc handles it as usual."""
    original = receiver._handle_rtp_packet

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        observer(packet)
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Send a PLI for ``media_ssrc`` upstream through ``receiver``'s connection."""
    await receiver._send_rtcp_pli(media_ssrc)


async def send_nack(receiver: RTCRtpReceiver, media_ssrc: int, lost: list[int]) -> None:
    """Ask the upstream sender to retransmit ``lost`` sequence numbers."""
    await receiver._send_rtcp_nack(media_ssrc, lost)
