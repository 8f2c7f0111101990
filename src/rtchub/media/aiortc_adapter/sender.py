"""Hooks 3 and 4, per sender: outgoing RTP counters and the RTCP feedback a sender gets.

3. ``RTCDtlsTransport._send_rtp`` and ``RTCRtpSender``'s name-mangled counters:
   :class:`RtpOutlet` sends already-built packets through the transport's SRTP
   and keeps the sender's packet/octet/timestamp counters in step, so aiortc's
   own RTCP loop sends sender reports that match what was forwarded
   (:func:`note_sent` does the same for the SFU's synchronous path).
4. ``RTCRtpSender._handle_rtcp_packet``: replaced on the instance so NACK,
   PLI, FIR (and for the SFU, REMB) reach rtchub; aiortc would answer them from
   its empty history and its absent encoder. Receiver and sender reports keep
   aiortc's handling (round-trip time and loss in ``getStats``).

:func:`label_sender` sets the ``a=msid`` a sender announces (stream and track
id), which aiortc only takes from its own stream id and the local track.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    unpack_remb_fci,
)

__all__ = ["FeedbackSink", "RtcpFeedback", "RtpOutlet", "label_sender", "note_sent", "sender_ssrcs",
           "tap_sender_feedback", "tap_sender_rtcp", "watch_sender_rtcp"]

# aiortc's RTCRtpSender keeps these name-mangled counters for its sender reports.
SENDER_NTP = "_RTCRtpSender__ntp_timestamp"
SENDER_RTP_TS = "_RTCRtpSender__rtp_timestamp"
SENDER_OCTETS = "_RTCRtpSender__octet_count"
SENDER_PACKETS = "_RTCRtpSender__packet_count"
# where tap_sender_rtcp leaves its sink for the wire's synchronous RTCP path (rtcp_in)
SENDER_SINK = "_rtchub_rtcp_sink"


_NTP_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
_NTP_SCALE = 1 << 32


class RtpOutlet:
    """Sends serialized RTP through a sender's transport; keeps its SR counters true."""

    __slots__ = ("_send", "_sender", "octets", "packets")

    def __init__(self, sender: RTCRtpSender) -> None:
        self._sender = sender
        self._send = sender.transport._send_rtp
        self.packets = 0
        self.octets = 0

    @property
    def ssrc(self) -> int:
        """The SSRC this sender announced in SDP."""
        return int(self._sender._ssrc)

    @property
    def rtx_ssrc(self) -> int:
        """The SSRC of this sender's retransmissions (RFC 4588)."""
        return int(self._sender._rtx_ssrc)

    async def send(self, data: bytes, timestamp: int, payload_len: int) -> None:
        """Send one packet (header already rewritten); raise ConnectionError if closed."""
        await self._send(data)
        self.packets += 1
        self.octets += payload_len
        note_sent(self._sender, timestamp, self.packets, self.octets)

    async def resend(self, data: bytes) -> None:
        """Send a retransmission (not counted in sender reports of the main SSRC)."""
        await self._send(data)


def note_sent(sender: RTCRtpSender, timestamp: int, packets: int, octets: int) -> None:
    """Tell ``sender``'s RTCP loop what was sent in its name (for its sender reports)."""
    setattr(sender, SENDER_NTP, int((time.time() + _NTP_OFFSET) * _NTP_SCALE))
    setattr(sender, SENDER_RTP_TS, timestamp)
    setattr(sender, SENDER_OCTETS, octets)
    setattr(sender, SENDER_PACKETS, packets)


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """The SSRC a sender announces and the SSRC of its retransmissions (RFC 4588)."""
    return int(sender._ssrc), int(sender._rtx_ssrc)


def label_sender(sender: RTCRtpSender, stream_id: str, track_id: str) -> None:
    """Announce ``a=msid:<stream_id> <track_id>`` for ``sender`` in the next offer."""
    sender._stream_id = stream_id
    sender._track_id = track_id


class RtcpFeedback:
    """What a downstream receiver asked for or told: NACKed sequence numbers, a
    keyframe, or a REMB estimate (``bitrate`` bits/s for the listed ``ssrcs``)."""

    __slots__ = ("bitrate", "keyframe", "nacked", "ssrcs")

    def __init__(self, nacked: list[int], keyframe: bool, bitrate: int | None = None,
                 ssrcs: tuple[int, ...] = ()) -> None:
        self.nacked = nacked
        self.keyframe = keyframe
        self.bitrate = bitrate
        self.ssrcs = ssrcs


FeedbackSink = Callable[[RtcpFeedback], Awaitable[None]]


def tap_sender_feedback(sender: RTCRtpSender, sink: FeedbackSink) -> None:
    """Route NACK/PLI/FIR for ``sender`` to ``sink``; other RTCP keeps aiortc's handling."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            await sink(RtcpFeedback(list(packet.lost), False))
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_FIR,
                                                                   RTCP_PSFB_PLI):
            await sink(RtcpFeedback([], True))
        else:
            await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def tap_sender_rtcp(sender: RTCRtpSender, sink: Callable[[RtcpFeedback], None]) -> None:
    """Route NACK, PLI/FIR and REMB for ``sender`` to the synchronous ``sink``.

    Receiver and sender reports keep aiortc's handling (round-trip time, loss).
    A REMB names several SSRCs; aiortc hands it to each sender it names, so each
    one's sink sees the same estimate. The sink is also left on the sender for the
    SFU's wire, which handles RTCP without aiortc (:class:`~.rtcp_in.RtcpDispatch`).
    """
    setattr(sender, SENDER_SINK, sink)
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            sink(RtcpFeedback(list(packet.lost), False))
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_FIR,
                                                                   RTCP_PSFB_PLI):
            sink(RtcpFeedback([], True))
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return  # an APP message that is not REMB
            sink(RtcpFeedback([], False, int(bitrate), tuple(ssrcs)))
        else:
            await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def watch_sender_rtcp(sender: RTCRtpSender, observer: Callable[[Any], None]) -> None:
    """Show every RTCP packet routed to ``sender`` to ``observer``, then let aiortc
    handle it as usual (tests watch what a client's sender is told)."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        observer(packet)
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]
