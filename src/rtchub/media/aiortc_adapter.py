"""Every use of aiortc's and aioice's private internals, in one place.

aiortc has no public API for an SFU: it decodes every received track and
encodes every sent one. rtchub forwards RTP packets instead, which needs four
hooks into aiortc 1.16 / aioice 0.13, all here and nowhere else:

1. **ICE gathering** (aioice ``Connection``): aioice gathers host candidates on
   every non-loopback interface and binds port 0. The server's peers must gather
   exactly the configured ``RTC_NODE_IP`` addresses in the ``RTC_UDP_PORTS`` range,
   so :func:`configure_ice` replaces one connection's ``gather_candidates`` with
   :func:`_gather`, which fills the same private fields the original fills.
2. **Incoming RTP** (``RTCRtpReceiver._handle_rtp_packet``): replaced on the
   instance by :func:`tap_receiver` so packets go to rtchub, not to aiortc's jitter
   buffer and decoder thread. Receiver statistics (for RTCP receiver reports)
   are still fed through the receiver's private ``__remote_streams``.
3. **Outgoing RTP** (``RTCDtlsTransport._send_rtp``, ``RTCRtpSender`` counters):
   :class:`RtpOutlet` sends already-built packets through the transport's SRTP and
   keeps the sender's private packet/octet/timestamp counters in step, so aiortc's
   own RTCP loop sends sender reports that match what was forwarded.
4. **Incoming RTCP for a sender** (``RTCRtpSender._handle_rtcp_packet``): replaced
   on the instance so NACK, PLI and FIR reach rtchub (aiortc would answer them
   from its empty history and its absent encoder).

:func:`check_assumptions` verifies each of these against the installed aiortc
and names what changed; the media tests call it first, so an upgrade that
breaks a hook fails loudly instead of silently dropping media.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aioice import Candidate, Connection
from aioice import ice as aioice_ice
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc import rtcrtpreceiver as aiortc_receiver
from aiortc.clock import current_ntp_time
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
)

__all__ = [
    "AdapterBroken",
    "RtcpFeedback",
    "RtpOutlet",
    "check_assumptions",
    "configure_ice",
    "request_keyframe",
    "tap_receiver",
    "tap_sender_feedback",
    "watch_receiver",
]

# aiortc's RTCRtpSender keeps these name-mangled counters for its sender reports.
_SENDER_NTP = "_RTCRtpSender__ntp_timestamp"
_SENDER_RTP_TS = "_RTCRtpSender__rtp_timestamp"
_SENDER_OCTETS = "_RTCRtpSender__octet_count"
_SENDER_PACKETS = "_RTCRtpSender__packet_count"
_RECEIVER_STREAMS = "_RTCRtpReceiver__remote_streams"
_RECEIVER_CODECS = "_RTCRtpReceiver__codecs"
_PATCHED = "_rtchub_gather"

PacketSink = Callable[[RtpPacket, int], Awaitable[None]]


class AdapterBroken(RuntimeError):
    """The installed aiortc/aioice no longer has what this adapter relies on."""


# -- 1. ICE: the addresses and ports the server's peers gather -------------------------


def configure_ice(pc: RTCPeerConnection, node_ips: Sequence[str],
                  ports: tuple[int, int] | None) -> None:
    """Make ``pc`` gather host candidates on ``node_ips`` within ``ports``.

    Call after the transceivers exist and before ``setLocalDescription`` (which
    gathers). With no node IPs and no port range aioice's default is kept.
    """
    if not node_ips and ports is None:
        return
    for transceiver in pc.getTransceivers():
        for transport in (transceiver.receiver.transport, transceiver.sender.transport):
            if transport is not None:
                _patch_connection(transport.transport.iceGatherer._connection, node_ips, ports)
    sctp = pc.sctp
    if sctp is not None:
        _patch_connection(sctp.transport.transport.iceGatherer._connection, node_ips, ports)


def _patch_connection(conn: Connection, node_ips: Sequence[str],
                      ports: tuple[int, int] | None) -> None:
    if getattr(conn, _PATCHED, False):
        return
    addresses = list(node_ips)

    async def gather() -> None:
        await _gather(conn, addresses, ports)

    conn.gather_candidates = gather  # type: ignore[method-assign]
    setattr(conn, _PATCHED, True)


async def _gather(conn: Connection, addresses: list[str],
                  ports: tuple[int, int] | None) -> None:
    """aioice's gather_candidates, host candidates only, on chosen addresses and ports."""
    if conn._local_candidates_start:
        return
    conn._local_candidates_start = True
    if not addresses:
        addresses = aioice_ice.get_host_addresses(use_ipv4=conn._use_ipv4,
                                                  use_ipv6=conn._use_ipv6)
    loop = asyncio.get_running_loop()
    for component in sorted(conn._components):
        for address in addresses:
            try:
                transport, protocol = await _bind(loop, conn, address, ports)
            except OSError:
                continue
            host, port = transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host), component=component,
                transport="udp", priority=candidate_priority(component, "host"), host=host,
                port=port, type="host")
            conn._protocols.append(protocol)
            conn._local_candidates.append(protocol.local_candidate)
    conn._local_candidates_end = True


async def _bind(loop: asyncio.AbstractEventLoop, conn: Connection, address: str,
                ports: tuple[int, int] | None) -> tuple[asyncio.DatagramTransport, Any]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    if ports is None:
        candidates: Sequence[int] = (0,)
    else:
        low, high = ports
        start = random.randint(low, high)  # spreads ports; not a secret
        candidates = [*range(start, high + 1), *range(low, start)]
    last: OSError | None = None
    for port in candidates:
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: aioice_ice.StunProtocol(conn), local_addr=(address, port),
                family=family)
        except OSError as exc:
            last = exc
            continue
        return transport, protocol
    raise last or OSError(f"no free UDP port on {address} in {ports}")


# -- 2. incoming RTP -------------------------------------------------------------------


def tap_receiver(receiver: RTCRtpReceiver, sink: PacketSink) -> None:
    """Send every RTP packet ``receiver`` gets to ``sink`` instead of aiortc's decoder.

    Receiver statistics still see each packet, so aiortc's RTCP receiver reports
    keep flowing upstream.
    """
    streams: dict[int, Any] = getattr(receiver, _RECEIVER_STREAMS)
    codecs: dict[int, Any] = getattr(receiver, _RECEIVER_CODECS)
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


# -- 3. outgoing RTP -------------------------------------------------------------------


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
        sender = self._sender
        setattr(sender, _SENDER_NTP, current_ntp_time())
        setattr(sender, _SENDER_RTP_TS, timestamp)
        setattr(sender, _SENDER_OCTETS, self.octets)
        setattr(sender, _SENDER_PACKETS, self.packets)

    async def resend(self, data: bytes) -> None:
        """Send a retransmission (not counted in sender reports of the main SSRC)."""
        await self._send(data)


# -- 4. RTCP feedback for a sender -----------------------------------------------------


class RtcpFeedback:
    """What a downstream receiver asked for: NACKed sequence numbers or a keyframe."""

    __slots__ = ("keyframe", "nacked")

    def __init__(self, nacked: list[int], keyframe: bool) -> None:
        self.nacked = nacked
        self.keyframe = keyframe


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


# -- assumptions -----------------------------------------------------------------------


async def check_assumptions() -> None:
    """Raise :class:`AdapterBroken` naming every private detail that is gone."""
    problems: list[str] = []
    conn = Connection(ice_controlling=False)
    for name in ("_local_candidates_start", "_local_candidates_end", "_local_candidates",
                 "_protocols", "_components", "_use_ipv4", "_use_ipv6"):
        if not hasattr(conn, name):
            problems.append(f"aioice Connection has no {name}")
    if not callable(getattr(aioice_ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is gone")
    if not isinstance(getattr(aioice_ice, "StunProtocol", None), type):
        problems.append("aioice.ice.StunProtocol is gone")
    if not hasattr(aiortc_receiver, "StreamStatistics"):
        problems.append("aiortc.rtcrtpreceiver.StreamStatistics is gone")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("audio")
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        if not isinstance(getattr(gatherer, "_connection", None), Connection):
            problems.append("RTCIceGatherer._connection is not an aioice Connection")
        receiver, sender = transceiver.receiver, transceiver.sender
        checks: tuple[tuple[object, tuple[str, ...]], ...] = (
            (receiver, ("_handle_rtp_packet", "_send_rtcp_pli", "_send_rtcp_nack",
                        _RECEIVER_STREAMS, _RECEIVER_CODECS)),
            (sender, ("_ssrc", "_rtx_ssrc", "_handle_rtcp_packet", _SENDER_NTP, _SENDER_RTP_TS,
                      _SENDER_OCTETS, _SENDER_PACKETS)),
            (sender.transport, ("_send_rtp",)))
        for obj, names in checks:
            for name in names:
                if not hasattr(obj, name):
                    problems.append(f"{type(obj).__name__} has no {name}")
    finally:
        await pc.close()
    if problems:
        raise AdapterBroken("aiortc/aioice changed under rtchub's media adapter: "
                            + "; ".join(problems))
