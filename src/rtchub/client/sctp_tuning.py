"""Faster aiortc data channels between two rtchub CLIs: the one place that bends aiortc.

aiortc 1.16 runs SCTP in pure Python over DTLS, and its cost is per packet
(a DTLS record, a ``sendto``, a parse, a SACK back), not per byte. Its packets
are at most 1,189 bytes so that they fit any IPv6 path. Between two processes
on one host that limit buys nothing: loopback carries 64 KB datagrams. So when
both ends are rtchub CLIs that say they can take it, and every address the
peer offered is one of ours, this module makes each side

* send SCTP packets of up to :data:`WIDE_PACKET` bytes (one DTLS record
  holds at most 16 KiB), about 14 times fewer packets, by setting aiortc's
  module constant ``USERDATA_MAX_LENGTH`` (fragment size, congestion window
  steps and burst limit all follow it);
* read and write whole DTLS records of that size (aiortc reads and writes
  records through fixed 1,500-byte buffers, which cut a bigger record in two:
  that is why raising the constant alone made transfers hang).

and, whatever the peer, acknowledges every second DATA packet instead of
every packet (RFC 9260 section 6.2 delayed SACK; every fourth between two
tuned CLIs on one host), at once when a gap or a duplicate appears, and
after at most :data:`SACK_DELAY` seconds otherwise.

It is applied only by the ``rtchub send``/``receive`` process (never by the
server), and only after :func:`problems` finds aiortc as this module expects
it; a changed aiortc gets the stock behaviour, and the test of
:func:`problems` fails naming the broken assumption. ``RTCHUB_SCTP_TUNING=off``
turns all of it off.

The wide packets are negotiated: each side puts ``{"sctpPacket": N}`` in its
relayed ``offer``/``answer`` frame, and sends wide packets only if the peer
advertised them. An older CLI ignores the field and never sees one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aioice
import aiortc
from aiortc import RTCPeerConnection, RTCSctpTransport, rtcdtlstransport, rtcsctptransport
from aiortc.rtcdtlstransport import RTCDtlsTransport

__all__ = ["SACK_DELAY", "STOCK_PACKET", "WIDE_PACKET", "Tuning", "advertise", "enabled",
           "negotiate", "problems"]

#: aiortc's own SCTP packet limit (bytes, common header included).
STOCK_PACKET = 1189
#: The largest SCTP packet one DTLS record carries (a record holds 2**14 bytes).
WIDE_PACKET = 16384
#: Asked-for receive buffer of each ICE socket (the kernel caps it at
#: ``net.core.rmem_max``): 16 KiB datagrams fill the default ~200 KB in a dozen,
#: and a datagram dropped there costs a retransmission, at worst a 1 s timeout.
RECEIVE_BUFFER = 4 * 1024 * 1024
#: Room for a DTLS record's header, explicit nonce, tag and padding on the wire.
_RECORD_OVERHEAD = 256
#: The longest a received DATA packet waits for its SACK (RFC 9260: under 500 ms).
SACK_DELAY = 0.02
#: Acknowledge at least every this many packets carrying DATA (RFC 9260: 2).
SACK_EVERY = 2
#: ... and between two tuned rtchub CLIs on one host, where a 16 KiB packet
#: costs little to resend and SACKs cost the most: 64 KiB per SACK.
SACK_EVERY_WIDE = 4
_FIELD = "sctpPacket"
_SCTP_COMMON_HEADER = 12
_DATA_CHUNK_HEADER = 16


def _user_data(packet: int) -> int:
    """The DATA chunk payload that fits a ``packet``-byte SCTP packet (a multiple of 4)."""
    return (packet - _SCTP_COMMON_HEADER - _DATA_CHUNK_HEADER) // 4 * 4


def problems() -> list[str]:
    """What in the installed aiortc breaks an assumption of this module (empty: none)."""
    found: list[str] = []
    if aiortc.__version__ != "1.16.0":
        found.append(f"aiortc is {aiortc.__version__}, this module was written for 1.16.0")
    stock = getattr(rtcsctptransport, "USERDATA_MAX_LENGTH", None)
    if stock != _user_data(STOCK_PACKET):
        found.append("aiortc.rtcsctptransport.USERDATA_MAX_LENGTH is "
                     f"{stock!r}, expected {_user_data(STOCK_PACKET)}")
    sctp = RTCSctpTransport
    for method in ("_send", "_transmit", "_receive_sack_chunk"):
        if "USERDATA_MAX_LENGTH" not in _names(getattr(sctp, method, None)):
            found.append(f"RTCSctpTransport.{method} no longer reads the module constant "
                         "USERDATA_MAX_LENGTH")
    if "_send_sack" not in _names(getattr(sctp, "_handle_data", None)):
        found.append("RTCSctpTransport._handle_data no longer sends SACKs through "
                     "self._send_sack")
    dtls = RTCDtlsTransport
    for method, call in (("_recv_next", "recv"), ("_write_ssl", "bio_read")):
        if not {"_ssl", call} <= _names(getattr(dtls, method, None)):
            found.append(f"RTCDtlsTransport.{method} no longer calls self._ssl.{call}")
    if "_protocols" not in _names(aioice.Connection.__init__):
        found.append("aioice.Connection no longer keeps its sockets' protocols in _protocols")
    if not hasattr(rtcdtlstransport, "SSL"):
        found.append("aiortc.rtcdtlstransport no longer uses pyOpenSSL's SSL")
    return found


def _names(function: object) -> set[str]:
    code = getattr(function, "__code__", None)
    return set(code.co_names) if code is not None else set()


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Tuning is on unless ``RTCHUB_SCTP_TUNING=off`` or aiortc is not as expected."""
    env = os.environ if environ is None else environ
    if env.get("RTCHUB_SCTP_TUNING", "on").strip().lower() in ("off", "0", "no", "false"):
        return False
    return not problems()


def advertise(on: bool) -> dict[str, Any]:
    """The fields this side adds to its relayed offer/answer frame."""
    return {_FIELD: WIDE_PACKET} if on else {}


def _candidate_hosts(sdp: str) -> set[str]:
    hosts: set[str] = set()
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) > 4:
                hosts.add(parts[4])
    return hosts


def same_host(local_sdp: str, remote_sdp: str) -> bool:
    """Every address the peer offered is loopback or one of ours (so no path MTU applies)."""
    ours = _candidate_hosts(local_sdp)
    theirs = _candidate_hosts(remote_sdp)
    if not theirs:
        return False
    for host in theirs:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # an mDNS name or garbage: could be anywhere
        if not loopback and host not in ours:
            return False
    return True


def negotiate(on: bool, peer_frame: Mapping[str, Any], local_sdp: str,
              remote_sdp: str) -> int:
    """The SCTP packet size this side may send: wide only if both sides are tuned, the
    peer advertised it and the peer is on this host."""
    offered = peer_frame.get(_FIELD)
    if (not on or isinstance(offered, bool) or not isinstance(offered, int)
            or offered <= STOCK_PACKET or not same_host(local_sdp, remote_sdp)):
        return STOCK_PACKET
    return min(offered, WIDE_PACKET)


@dataclass(slots=True)
class Tuning:
    """One peer connection's tuning; :meth:`close` cancels its timer and restores aiortc."""

    sctp: RTCSctpTransport | None = None
    sack: _DelayedSack | None = None
    packet: int = STOCK_PACKET

    @classmethod
    def apply(cls, pc: RTCPeerConnection) -> Tuning:
        """Tune ``pc`` (its SCTP transport must exist): whole DTLS records and delayed
        SACKs; packets stay stock-sized until :meth:`use_packet`."""
        sctp = pc.sctp
        if sctp is None:
            raise RuntimeError("tune after the data channel's transport exists")
        _widen_records(sctp.transport)
        _grow_receive_buffers(sctp.transport)
        return cls(sctp=sctp, sack=_DelayedSack(sctp))

    def use_packet(self, packet: int) -> None:
        """Send SCTP packets of up to ``packet`` bytes (process-wide: call before data
        flows, once the peer agreed)."""
        self.packet = packet
        rtcsctptransport.USERDATA_MAX_LENGTH = _user_data(packet)
        if self.sack is not None:
            self.sack.every = SACK_EVERY_WIDE if packet > STOCK_PACKET else SACK_EVERY
        sctp = self.sctp
        if sctp is not None and sctp._flight_size == 0 and not sctp._sent_queue:
            sctp._cwnd = 3 * _user_data(packet)  # the initial window, in packets of this size

    def close(self) -> None:
        """Stop the SACK timer and put aiortc's packet size back."""
        if self.sack is not None:
            self.sack.close()
        rtcsctptransport.USERDATA_MAX_LENGTH = _user_data(STOCK_PACKET)


class _WideRecords:
    """A pyOpenSSL connection whose reads take a whole record of up to 16 KiB."""

    def __init__(self, ssl: Any) -> None:
        self._inner = ssl

    def recv(self, bufsiz: int, flags: int | None = None) -> bytes:
        data: bytes = self._inner.recv(max(bufsiz, WIDE_PACKET), flags)
        return data

    def bio_read(self, bufsiz: int) -> bytes:
        data: bytes = self._inner.bio_read(max(bufsiz, WIDE_PACKET + _RECORD_OVERHEAD))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _widen_records(dtls: RTCDtlsTransport) -> None:
    """Read and write whole records once the handshake is done (before any data flows)."""
    def widen() -> None:
        ssl = dtls._ssl
        if dtls.state == "connected" and ssl is not None and not isinstance(ssl, _WideRecords):
            dtls._ssl = _WideRecords(ssl)  # type: ignore[assignment]

    dtls.on("statechange", widen)
    widen()


def _grow_receive_buffers(dtls: RTCDtlsTransport) -> None:
    """Ask for :data:`RECEIVE_BUFFER` bytes on each gathered ICE socket (best effort)."""
    connection = getattr(dtls.transport, "_connection", None)
    for protocol in getattr(connection, "_protocols", ()):
        transport = getattr(protocol, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


class _DelayedSack:
    """Stands in for ``sctp._send_sack``: SACK every ``every`` DATA packets, at once on
    a gap or duplicate, and within :data:`SACK_DELAY` seconds otherwise."""

    def __init__(self, sctp: RTCSctpTransport) -> None:
        self._sctp = sctp
        self._send_now = sctp._send_sack
        self._loop = asyncio.get_running_loop()
        self._waiting = 0
        self.every = SACK_EVERY
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        sctp._send_sack = self  # type: ignore[method-assign]

    async def __call__(self) -> None:
        sctp = self._sctp
        self._waiting += 1
        if self._waiting >= self.every or sctp._sack_misordered or sctp._sack_duplicates:
            await self._flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(SACK_DELAY, self._expired)

    async def _flush(self) -> None:
        # The timer is left to lapse rather than cancelled: re-arming one per SACK costs
        # more than the SACK saves; a lapsed timer finds nothing waiting.
        self._waiting = 0
        if self._sctp._sack_needed:
            # ConnectionError: the transport closed under us, nothing left to acknowledge
            with contextlib.suppress(ConnectionError):
                await self._send_now()

    def _expired(self) -> None:
        self._timer = None
        if self._waiting and (self._task is None or self._task.done()):
            self._task = self._loop.create_task(self._flush())

    def close(self) -> None:
        """Cancel the timer and any SACK in flight."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
