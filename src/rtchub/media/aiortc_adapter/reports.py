"""Hook 6: the RTCP reports a client sends the server, as plain values.

``RTCDtlsTransport._handle_rtcp_data`` is wrapped on the instance so that every
receiver report block (what the client got of a stream the server sends it:
fraction lost, cumulative loss, extended highest sequence number, jitter, and the
LSR/DLSR echo of the server's last sender report) and every sender report (what
the client says it sent) is shown to an observer before aiortc routes the packets
as usual (and when the SFU's :class:`~.wire.SrtpWire` handles RTCP itself,
:class:`~.rtcp_in.RtcpDispatch` shows them to the same observers, listed on the
transport). The round-trip time of a block that echoes the server's last sender
report is worked out here from the sending ``RTCRtpSender``'s private
``__lsr``/``__lsr_time`` (the NTP middle bits of its last SR and when it went):
RTT = arrival - SR sent - DLSR (RFC 3550 6.4.1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtcpPacket, RtcpRrPacket, RtcpSrPacket

__all__ = ["ReportBlock", "ReportObserver", "SenderInfo", "bundled_transport", "watch_reports"]

log = logging.getLogger("rtchub.media")

SENDER_LSR = "_RTCRtpSender__lsr"
SENDER_LSR_TIME = "_RTCRtpSender__lsr_time"
# the observers of a transport's reports, for the wire's synchronous RTCP path (rtcp_in)
DTLS_REPORT_OBSERVERS = "_rtchub_report_observers"


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block about a stream the server sends (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int  # 0-255, since the client's previous report
    packets_lost: int  # cumulative
    highest_sequence: int  # extended (cycles << 16 | sequence number)
    jitter: int  # interarrival jitter in RTP timestamp units
    rtt: float | None  # seconds, when the block echoes the server's last sender report


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """A sender report of the client: what it sent on ``ssrc`` so far."""

    ssrc: int
    packets: int
    octets: int


ReportObserver = Callable[[list[ReportBlock], list[SenderInfo]], None]


def bundled_transport(pc: RTCPeerConnection) -> RTCDtlsTransport | None:
    """The DTLS transport every section of a max-bundle connection shares (None: none yet)."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None:
            return transport
    sctp = pc.sctp
    return None if sctp is None else sctp.transport


def _rtt(senders: dict[int, Any], ssrc: int, lsr: int, dlsr: int, now: float) -> float | None:
    sender = senders.get(ssrc)
    if sender is None or not lsr or getattr(sender, SENDER_LSR, None) != lsr:
        return None
    sent = getattr(sender, SENDER_LSR_TIME, None)
    if sent is None:
        return None
    return max(0.0, now - float(sent) - dlsr / 65536)


def watch_reports(pc: RTCPeerConnection, observer: ReportObserver) -> RTCDtlsTransport | None:
    """Show the client's receiver and sender reports on ``pc`` to ``observer``.

    Returns the transport watched (None when ``pc`` has none yet: call again later).
    Call it once per transport; aiortc still handles every packet afterwards. Reports
    that the SFU's wire handles itself (:class:`~.rtcp_in.RtcpDispatch`) reach
    ``observer`` from there.
    """
    dtls = bundled_transport(pc)
    if dtls is None:
        return None
    observers: list[ReportObserver] | None = getattr(dtls, DTLS_REPORT_OBSERVERS, None)
    if observers is None:
        observers = []
        setattr(dtls, DTLS_REPORT_OBSERVERS, observers)
    observers.append(observer)
    original = dtls._handle_rtcp_data

    async def handle(data: bytes) -> None:
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            packets = []
        blocks: list[ReportBlock] = []
        infos: list[SenderInfo] = []
        now = time.time()
        senders: dict[int, Any] | None = None
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                info = packet.sender_info
                infos.append(SenderInfo(packet.ssrc, info.packet_count, info.octet_count))
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if senders is None:
                        senders = {s._ssrc: s for s in pc.getSenders()}
                    blocks.append(ReportBlock(
                        report.ssrc, report.fraction_lost, report.packets_lost,
                        report.highest_sequence, report.jitter,
                        _rtt(senders, report.ssrc, report.lsr, report.dlsr, now)))
        if blocks or infos:
            try:
                observer(blocks, infos)
            except Exception:
                log.exception("an RTCP report observer failed")
        await original(data)

    dtls._handle_rtcp_data = handle  # type: ignore[method-assign]
    return dtls
