"""Hook 5, the SFU's packet path: raw SRTP in and out of one bundled DTLS transport.

aiortc handles an incoming media datagram in five steps before a receiver sees
it: aioice queues it, the DTLS transport's reader task takes it off the queue,
unprotects it, parses it into an ``RtpPacket`` (4.4 µs alone here) and routes it
by SSRC and payload type. The SFU does not need the object, the queue or the
task: :class:`SrtpWire` replaces the aioice connection's ``data_received`` on the
instance, so every SRTP (not SRTCP) datagram is unprotected and handed, as
bytes, to the SFU's synchronous handler at once. With ``rtcp=True`` every SRTCP
datagram is unprotected there too and handled at once by
:class:`~.rtcp_in.RtcpDispatch` (hook 7). DTLS, SCTP and STUN keep aiortc's path.
Sending is synchronous too: protect with the transport's SRTP session and
``sendto`` on the nominated pair's socket, without the three coroutine hops of
``RTCDtlsTransport._send_rtp``.

The transport's private byte/packet counters are brought up to date whenever
aiortc reports them (its ``_get_stats``), so ``getStats`` still shows the
transport's traffic without a per-packet cost. :class:`ReceptionStats` feeds
the private per-SSRC statistics of a receiver, so aiortc's RTCP loop keeps
sending receiver reports (loss, jitter, round-trip time) to the publisher.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc import rtcrtpreceiver as aiortc_receiver
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from pylibsrtp import _binding as srtp_binding

from rtchub.media.aiortc_adapter.receiver import RECEIVER_STREAMS
from rtchub.media.aiortc_adapter.rtcp_in import RtcpDispatch

__all__ = ["ReceptionStats", "RtpHandler", "SrtpWire", "bundle_primary_mid"]

log = logging.getLogger("rtchub.media")

DTLS_RX_BYTES = "_RTCDtlsTransport__rx_bytes"
DTLS_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
DTLS_TX_BYTES = "_RTCDtlsTransport__tx_bytes"
DTLS_TX_PACKETS = "_RTCDtlsTransport__tx_packets"
_DTLS_COUNTERS = (DTLS_RX_BYTES, DTLS_RX_PACKETS, DTLS_TX_BYTES, DTLS_TX_PACKETS)
_CONNECTED = DtlsState.CONNECTED
_srtp_protect = srtp_binding.lib.srtp_protect
_SRTCP_INDEX_LEN = pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN - pylibsrtp.SRTP_MAX_TRAILER_LEN

# (plain RTP packet, arrival in ms of a monotonic-enough wall clock)
RtpHandler = Callable[[bytes, int], None]


class _Protector:
    """``pylibsrtp.Session.protect`` without its per-call checks and allocations.

    pylibsrtp wraps each call in Python that allocates a length cell, checks
    types and sizes and copies twice; at tens of thousands of packets a second
    that wrapper costs more than the encryption. This calls ``srtp_protect`` on
    the session's own buffer and context (``Session._srtp``, ``_cdata``,
    ``_buffer``), with one length cell kept for the session's life.
    """

    __slots__ = ("_buffer", "_cdata", "_context", "_length", "_room", "session")

    def __init__(self, session: pylibsrtp.Session) -> None:
        self.session = session
        self._context = session._srtp[0]
        self._cdata = session._cdata
        self._buffer = session._buffer
        self._length = srtp_binding.ffi.new("int *")
        self._room = len(session._buffer) - pylibsrtp.SRTP_MAX_TRAILER_LEN

    def protect(self, packet: bytes) -> bytes | None:
        """The SRTP packet, or None when libsrtp refuses (e.g. a replay too old)."""
        size = len(packet)
        if size > self._room:
            return None
        self._buffer[0:size] = packet
        self._length[0] = size
        if srtp_binding.lib.srtp_protect(self._context, self._cdata, self._length):
            return None
        return bytes(self._buffer[0:self._length[0]])

    def protect_rtcp(self, packet: bytes) -> bytes | None:
        """The SRTCP packet (``srtp_protect_rtcp`` the same way), or None."""
        size = len(packet)
        if size > self._room - _SRTCP_INDEX_LEN:
            return None
        self._buffer[0:size] = packet
        self._length[0] = size
        if srtp_binding.lib.srtp_protect_rtcp(self._context, self._cdata, self._length):
            return None
        return bytes(self._buffer[0:self._length[0]])


class SrtpWire:
    """Synchronous RTP in and out of one peer connection's DTLS transport.

    ``on_rtp`` gets every incoming RTP packet, already unprotected, from the
    socket callback itself; it must not block and should not raise (an
    exception is logged and the packet dropped). :meth:`close` stops the
    handler; the transport then gives RTP to aiortc again. The wire counts what
    it moves itself and adds it to the transport's private counters when
    aiortc reports them (``RTCDtlsTransport._get_stats``), not per packet.

    With ``rtcp``, incoming SRTCP is unprotected in the socket callback too and
    handed to ``rtcp_in`` (an :class:`~.rtcp_in.RtcpDispatch`), never to aiortc's
    reader task; ``rx_rtcp``/``rx_rtcp_bytes`` count it (``rx_packets`` and
    ``rx_bytes`` stay RTP only).
    """

    __slots__ = ("_addr", "_dtls", "_nominated", "_pair", "_protector", "_socket", "closed",
                 "rtcp_in", "rx_bytes", "rx_dropped", "rx_early", "rx_packets", "rx_rtcp",
                 "rx_rtcp_bytes", "tx_bytes", "tx_dropped", "tx_packets")

    def __init__(self, dtls: RTCDtlsTransport, on_rtp: RtpHandler, *, rtcp: bool = False) -> None:
        self._dtls = dtls
        self.rtcp_in = RtcpDispatch(dtls) if rtcp else None
        self.rx_rtcp = self.rx_rtcp_bytes = 0
        connection = dtls.transport._connection
        self._nominated: dict[int, Any] = connection._nominated
        self._pair: Any = None
        self._addr: tuple[str, int] | None = None
        self._socket: Any = None
        self._protector: _Protector | None = None
        self.closed = False
        self.rx_packets = self.rx_bytes = 0
        self.rx_dropped = 0  # SRTP authentication failures
        self.rx_early = 0    # RTP that arrived before DTLS had its keys (dropped)
        self.tx_packets = self.tx_bytes = 0
        self.tx_dropped = 0  # sends while not connected, or refused by SRTP
        original = connection.data_received
        dispatch = self.rtcp_in

        def data_received(data: bytes, component: int) -> None:
            # RTP, not RTCP (RFC 5761: an RTCP packet type sits where RTP has M + PT)
            if 127 < data[0] < 192 and len(data) > 12 and not 191 < data[1] < 209:
                srtp = dtls._rx_srtp
                if srtp is None and not self.closed:
                    # before DTLS has its keys: dropped here, never queued for aiortc,
                    # which would parse it later with its own header extension ids (the
                    # server renumbers them), fail, and end the DTLS transport
                    self.rx_early += 1
                    return
                if srtp is not None and not self.closed:
                    try:
                        plain = srtp.unprotect(data)
                    except (pylibsrtp.Error, ValueError):  # refused, or too long for it
                        self.rx_dropped += 1
                        return
                    self.rx_packets += 1
                    self.rx_bytes += len(data)
                    try:
                        on_rtp(plain, int(time.time() * 1000))
                    except Exception:
                        log.exception("the SFU's RTP handler failed; packet dropped")
                    return
            elif 127 < data[0] < 192 and 191 < data[1] < 209 and dispatch is not None:
                srtp = dtls._rx_srtp
                if srtp is not None and not self.closed:  # (before the keys: aiortc's path)
                    try:
                        plain = srtp.unprotect_rtcp(data)
                    except (pylibsrtp.Error, ValueError):  # refused, or too long for it
                        self.rx_dropped += 1
                        return
                    self.rx_rtcp += 1
                    self.rx_rtcp_bytes += len(data)
                    try:
                        dispatch(plain)
                    except Exception:
                        log.exception("the SFU's RTCP handling failed; packet dropped")
                    return
            original(data, component)

        connection.data_received = data_received  # type: ignore[method-assign]
        get_stats = dtls._get_stats
        reported = [0, 0, 0, 0]  # what was added to aiortc's counters already

        def stats_with_wire() -> Any:
            now = (self.rx_bytes + self.rx_rtcp_bytes, self.rx_packets + self.rx_rtcp,
                   self.tx_bytes, self.tx_packets)
            for name, total, done in zip(_DTLS_COUNTERS, now, reported, strict=True):
                setattr(dtls, name, getattr(dtls, name) + total - done)
            reported[:] = now
            return get_stats()

        dtls._get_stats = stats_with_wire  # type: ignore[method-assign]

    def send_rtp(self, packet: bytes) -> bool:
        """Protect and send one RTP packet; False (and nothing sent) if not connected."""
        # once per forwarded copy: _Protector.protect is inlined here
        if self._nominated.get(1) is not self._pair:
            self._route(self._nominated.get(1))
        sock = self._socket
        dtls = self._dtls
        if sock is None or self.closed or dtls._state is not _CONNECTED:
            self.tx_dropped += 1
            return False
        protector = self._protector
        if protector is None or protector.session is not dtls._tx_srtp:
            protector = self._protector = _Protector(dtls._tx_srtp)
        size = len(packet)
        if size > protector._room:
            self.tx_dropped += 1
            return False
        buffer = protector._buffer
        length = protector._length
        buffer[0:size] = packet
        length[0] = size
        if _srtp_protect(protector._context, protector._cdata, length):
            self.tx_dropped += 1  # e.g. a sequence number too far behind for SRTP
            return False
        size = length[0]
        sock.sendto(buffer[0:size], self._addr)
        self.tx_packets += 1
        self.tx_bytes += size
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        """Protect and send one compound RTCP packet; False if not connected."""
        pair = self._nominated.get(1)
        if pair is not self._pair:
            self._route(pair)
        sock = self._socket
        dtls = self._dtls
        if sock is None or self.closed or dtls._state is not _CONNECTED:
            return False
        protector = self._protector
        if protector is None or protector.session is not dtls._tx_srtp:
            protector = self._protector = _Protector(dtls._tx_srtp)
        data = protector.protect_rtcp(packet)
        if data is None:
            return False
        sock.sendto(data, self._addr)
        self.tx_bytes += len(data)
        return True

    def carry_reports(self, sender: RTCRtpSender) -> None:
        """Send ``sender``'s own RTCP (aiortc's sender reports every second, its BYE)
        through this wire, at once, not through ``RTCDtlsTransport._send_rtp``'s
        coroutines and aioice's send path; ``sender`` must use this wire's transport."""
        send_rtcp = self.send_rtcp

        async def send(packets: list[Any]) -> None:
            send_rtcp(b"".join(bytes(packet) for packet in packets))

        sender._send_rtcp = send  # type: ignore[method-assign]

    def _route(self, pair: Any) -> None:
        """Follow the nominated pair: its socket and remote address (None: not connected)."""
        self._pair = pair
        if pair is None:
            self._socket = self._addr = None
            return
        self._addr = (pair.remote_candidate.host, pair.remote_candidate.port)
        sock = pair.protocol.transport
        self._socket = None if sock is None or sock.is_closing() else sock

    @property
    def connected(self) -> bool:
        """True once DTLS is up and an ICE pair is nominated."""
        return self._dtls._state is _CONNECTED and 1 in self._nominated

    def close(self) -> None:
        """Stop handing RTP to the handler and stop sending."""
        self.closed = True


class _Seen:
    """The two fields of an RTP packet aiortc's StreamStatistics reads."""

    __slots__ = ("sequence_number", "timestamp")

    def __init__(self) -> None:
        self.sequence_number = 0
        self.timestamp = 0


class ReceptionStats:
    """Reception statistics of one incoming SSRC, in aiortc's receiver-report table.

    aiortc's RTCP loop for ``receiver`` reports them upstream (fraction lost,
    cumulative loss, highest sequence number, jitter, LSR/DLSR for the
    publisher's round-trip time).
    """

    __slots__ = ("_listed", "_seen", "_ssrc", "_stats", "_streams")

    def __init__(self, receiver: RTCRtpReceiver, ssrc: int, clock_rate: int) -> None:
        self._streams: dict[int, Any] = getattr(receiver, RECEIVER_STREAMS)
        self._ssrc = ssrc
        stats = self._streams.get(ssrc)
        # An entry enters aiortc's table with its first packet, never before: aiortc's RTCP
        # loop reads every entry, one with no packet yet (sequence fields None) makes it
        # raise TypeError, which ends the loop for good (no more receiver reports) and
        # leaves RTCRtpReceiver.stop(), so pc.close(), waiting forever.
        self._listed = stats is not None
        self._stats: Any = stats if stats is not None else aiortc_receiver.StreamStatistics(
            clock_rate)
        self._seen = _Seen()

    def add(self, seq: int, timestamp: int) -> None:
        """Count one received packet."""
        seen = self._seen
        seen.sequence_number = seq
        seen.timestamp = timestamp
        self._stats.add(seen)
        if not self._listed:
            self._listed = True
            self._streams[self._ssrc] = self._stats

    @property
    def packets_received(self) -> int:
        """Packets received so far (including duplicates and retransmissions)."""
        return int(self._stats.packets_received)

    @property
    def packets_lost(self) -> int:
        """Packets expected but not received, as RFC 3550 counts them."""
        if self._stats.max_seq is None:
            return 0
        return int(self._stats.packets_lost)

    @property
    def jitter(self) -> int:
        """Interarrival jitter in timestamp units (RFC 3550)."""
        return int(self._stats.jitter)

    def remove(self) -> None:
        """Stop reporting this SSRC."""
        if self._streams.get(self._ssrc) is self._stats:
            del self._streams[self._ssrc]


def bundle_primary_mid(pc: RTCPeerConnection) -> str | None:
    """The mid of the section whose transport carries the whole BUNDLE group.

    aiortc adds a trickled candidate only to sections not bundled into another
    (its private ``_bundled`` flag), so a candidate meant for the group must name
    this mid.
    """
    for transceiver in pc.getTransceivers():
        if transceiver.mid is not None and not transceiver._bundled:
            return str(transceiver.mid)
    sctp = pc.sctp
    if sctp is not None and sctp.mid is not None and not sctp._bundled:
        return str(sctp.mid)
    return None
