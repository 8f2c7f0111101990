"""Hook 7: incoming RTCP handled synchronously, with aiortc's own state kept as it keeps it.

aiortc takes every SRTCP datagram through an aioice queue, the DTLS transport's
reader task, ``RtcpPacket.parse`` and one coroutine per recipient. On a server
that forwards to many subscribers, each sends a compound (receiver report, REMB)
about every second, and that path costs more than what the packet asks for.
:class:`RtcpDispatch` is given the plain compound by :class:`~.wire.SrtpWire`
(in the socket callback), reads it with :func:`~rtchub.media.rtcp_compound.read_compound`
and does at once what aiortc's handlers would do, routed by aiortc's own table
(``RTCDtlsTransport._rtp_router``):

- **A report block about a stream the server sends** updates that
  ``RTCRtpSender``'s round-trip time (``__rtt``, smoothed as aiortc smooths it)
  and its ``remote-inbound-rtp`` statistics (``__stats``), as
  ``RTCRtpSender._handle_rtcp_packet`` does, so ``getStats`` reports them; and it
  reaches the report observers (:func:`~.reports.watch_reports`).
- **A sender report of a stream the server receives** updates that
  ``RTCRtpReceiver``'s ``remote-outbound-rtp`` statistics and its ``__lsr`` /
  ``__lsr_time``, which its receiver reports echo (the client's round-trip time);
  a simulcast layer's SSRC, which aiortc's table never learns (the SFU takes the
  RTP), is found in the receivers' statistics table. The observers see it too.
- **NACK, PLI, FIR and REMB** go to the synchronous sink of the sender they name
  (:func:`~.sender.tap_sender_rtcp`); a FIR names its SSRCs in its FCI (aiortc
  routes it by its media source field, which is 0). A sender without a sink
  (none on the SFU) is not told: aiortc would answer from an empty history.

BYE, SDES, XR and other packets are dropped: aiortc's only use of a BYE is to stop
a receiver's decoder, which gets no packets on the SFU's path and stops at close.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import clock
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpsender import RTT_ALPHA
from aiortc.stats import RTCRemoteInboundRtpStreamStats, RTCRemoteOutboundRtpStreamStats

from rtchub.media.aiortc_adapter.receiver import RECEIVER_STREAMS
from rtchub.media.aiortc_adapter.reports import (
    DTLS_REPORT_OBSERVERS,
    SENDER_LSR,
    SENDER_LSR_TIME,
    ReportBlock,
    ReportObserver,
    SenderInfo,
)
from rtchub.media.aiortc_adapter.sender import SENDER_PACKETS, SENDER_SINK, RtcpFeedback
from rtchub.media.rtcp_compound import Compound, ReceptionReport, RtcpError, read_compound

__all__ = ["RtcpDispatch"]

log = logging.getLogger("rtchub.media")

SENDER_RTT = "_RTCRtpSender__rtt"
SENDER_STATS = "_RTCRtpSender__stats"
SENDER_KIND = "_RTCRtpSender__kind"
RECEIVER_STATS = "_RTCRtpReceiver__stats"
RECEIVER_LSR = "_RTCRtpReceiver__lsr"
RECEIVER_LSR_TIME = "_RTCRtpReceiver__lsr_time"
RECEIVER_KIND = "_RTCRtpReceiver__kind"

FeedbackSink = Callable[[RtcpFeedback], None]


class RtcpDispatch:
    """Handles the plain compound RTCP packets of one DTLS transport (see the module doc).

    Counts what it handled (``packets``), what did not parse (``malformed``) and the
    feedback that named no sender with a sink (``unrouted``).
    """

    __slots__ = ("_dtls", "_router", "malformed", "packets", "unrouted")

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._router: Any = dtls._rtp_router
        self.packets = 0
        self.malformed = 0
        self.unrouted = 0

    def __call__(self, data: bytes) -> None:
        """Handle one plain compound RTCP packet."""
        try:
            compound = read_compound(data)
        except RtcpError:
            self.malformed += 1
            return
        self.packets += 1
        senders: dict[int, Any] = self._router.senders
        if compound.reports or compound.senders:
            self._reports(compound, senders)
        for nack in compound.nacks:
            self._tell(senders.get(nack.media_ssrc), RtcpFeedback(nack.lost, False))
        for ssrc in compound.keyframes:
            self._tell(senders.get(ssrc), RtcpFeedback([], True))
        for remb in compound.rembs:
            told: set[int] = set()  # a sender named twice is told once, as aiortc does
            for ssrc in remb.ssrcs:
                sender = senders.get(ssrc)
                if sender is not None and id(sender) not in told:
                    told.add(id(sender))
                    self._tell(sender, RtcpFeedback([], False, remb.bitrate,
                                                    tuple(remb.ssrcs)))

    def _tell(self, sender: Any, feedback: RtcpFeedback) -> None:
        sink: FeedbackSink | None = getattr(sender, SENDER_SINK, None)
        if sink is None:
            self.unrouted += 1
            return
        sink(feedback)

    def _reports(self, compound: Compound, senders: dict[int, Any]) -> None:
        now = time.time()
        blocks: list[ReportBlock] = []
        for report in compound.reports:
            sender = senders.get(report.ssrc)
            rtt = None if sender is None else _note_report(sender, report, now)
            blocks.append(ReportBlock(report.ssrc, report.fraction_lost, report.packets_lost,
                                      report.highest_sequence, report.jitter, rtt))
        infos: list[SenderInfo] = []
        for sr in compound.senders:
            infos.append(SenderInfo(sr.ssrc, sr.packets, sr.octets))
            receiver = self._receiver_of(sr.ssrc)
            if receiver is not None:
                _note_sender_report(receiver, sr.ssrc, sr.ntp_timestamp, sr.packets, sr.octets,
                                    now)
        observers: list[ReportObserver] = getattr(self._dtls, DTLS_REPORT_OBSERVERS, [])
        for observer in observers:
            try:
                observer(blocks, infos)
            except Exception:
                log.exception("an RTCP report observer failed")

    def _receiver_of(self, ssrc: int) -> Any:
        router = self._router
        receiver = router.ssrc_table.get(ssrc)
        if receiver is not None:
            return receiver
        for candidate in router.receivers:
            if ssrc in getattr(candidate, RECEIVER_STREAMS, {}):
                return candidate
        return None


def _note_report(sender: Any, report: ReceptionReport, now: float) -> float | None:
    """What ``RTCRtpSender._handle_rtcp_packet`` does with a report block about it; returns
    this block's own round-trip time (seconds), when it echoes the sender's last SR."""
    rtt: float | None = None
    lsr = getattr(sender, SENDER_LSR, None)
    sent = getattr(sender, SENDER_LSR_TIME, None)
    if report.lsr and lsr == report.lsr and sent is not None:
        rtt = max(0.0, now - float(sent) - report.dlsr / 65536)
        if report.dlsr:  # aiortc smooths only the blocks that carry a delay
            raw = now - float(sent) - report.dlsr / 65536
            before = getattr(sender, SENDER_RTT)
            setattr(sender, SENDER_RTT,
                    raw if before is None else RTT_ALPHA * before + (1 - RTT_ALPHA) * raw)
    getattr(sender, SENDER_STATS).add(RTCRemoteInboundRtpStreamStats(
        timestamp=clock.current_datetime(), type="remote-inbound-rtp",
        id="remote-inbound-rtp_" + str(id(sender)), ssrc=report.reporter,
        kind=getattr(sender, SENDER_KIND), transportId=sender.transport._stats_id,
        packetsReceived=getattr(sender, SENDER_PACKETS) - report.packets_lost,
        packetsLost=report.packets_lost, jitter=report.jitter,
        roundTripTime=getattr(sender, SENDER_RTT), fractionLost=report.fraction_lost))
    return rtt


def _note_sender_report(receiver: Any, ssrc: int, ntp: int, packets: int, octets: int,
                        now: float) -> None:
    """What ``RTCRtpReceiver._handle_rtcp_packet`` does with a sender report."""
    getattr(receiver, RECEIVER_STATS).add(RTCRemoteOutboundRtpStreamStats(
        timestamp=clock.current_datetime(), type="remote-outbound-rtp",
        id=f"remote-outbound-rtp_{id(receiver)}", ssrc=ssrc,
        kind=getattr(receiver, RECEIVER_KIND), transportId=receiver.transport._stats_id,
        packetsSent=packets, bytesSent=octets,
        remoteTimestamp=clock.datetime_from_ntp(ntp)))
    getattr(receiver, RECEIVER_LSR)[ssrc] = (ntp >> 16) & 0xFFFFFFFF
    getattr(receiver, RECEIVER_LSR_TIME)[ssrc] = now
