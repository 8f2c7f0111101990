"""Hook 1, ICE gathering: the addresses and ports the server's peers gather.

aioice gathers host candidates on every non-loopback interface and binds port
0. The server's peers must gather exactly the configured ``RTC_NODE_IP``
addresses in the ``RTC_UDP_PORTS`` range, so :func:`configure_ice` replaces one
connection's ``gather_candidates`` with :func:`_gather`, which fills the same
private fields the original fills.

The sockets it binds use :class:`_RtpFirstProtocol`, aioice's ``StunProtocol``
with one shortcut: a datagram whose first byte says RTP/RTCP (128-191, RFC 7983)
goes straight to the connection instead of first failing to parse as STUN
(what aioice does for every media packet; a STUN message starts with two zero
bits, so nothing that parses as STUN takes the shortcut).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Sequence
from typing import Any

from aioice import Candidate, Connection
from aioice import ice as aioice_ice
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc import RTCPeerConnection

from rtchub.media.aiortc_adapter.consent import configure_consent

__all__ = ["configure_ice"]

_PATCHED = "_rtchub_gather"


def configure_ice(pc: RTCPeerConnection, node_ips: Sequence[str],
                  ports: tuple[int, int] | None, buffer_bytes: int | None = None,
                  consent_timeout: float | None = None,
                  on_consent_expired: Callable[[], None] | None = None) -> None:
    """Make ``pc`` gather host candidates on ``node_ips`` within ``ports``.

    Call after the transceivers exist and before ``setLocalDescription`` (which
    gathers). With no node IPs and no port range aioice's default is kept.
    Calling it again (after more transceivers appeared) patches only the new
    connections. ``buffer_bytes`` sizes the sockets' kernel receive and send
    buffers (SO_RCVBUF/SO_SNDBUF, capped by ``net.core.rmem_max``/``wmem_max``):
    a media server wants room for the bursts that arrive while its event loop
    is busy, or the kernel drops them. ``consent_timeout`` replaces aioice's consent
    checks with :func:`~rtchub.media.aiortc_adapter.consent.configure_consent`'s.
    """
    if consent_timeout is not None:
        configure_consent(pc, consent_timeout, on_consent_expired)
    if not node_ips and ports is None:
        return
    options = (list(node_ips), ports, buffer_bytes)
    for transceiver in pc.getTransceivers():
        for transport in (transceiver.receiver.transport, transceiver.sender.transport):
            if transport is not None:
                _patch_connection(transport.transport.iceGatherer._connection, *options)
    sctp = pc.sctp
    if sctp is not None:
        _patch_connection(sctp.transport.transport.iceGatherer._connection, *options)


def _patch_connection(conn: Connection, addresses: list[str], ports: tuple[int, int] | None,
                      buffer_bytes: int | None) -> None:
    if getattr(conn, _PATCHED, False):
        return

    async def gather() -> None:
        await _gather(conn, addresses, ports, buffer_bytes)

    conn.gather_candidates = gather  # type: ignore[method-assign]
    setattr(conn, _PATCHED, True)


class _RtpFirstProtocol(aioice_ice.StunProtocol):
    """aioice's STUN protocol, handing RTP/RTCP datagrams on without a STUN parse.

    A socket is bound (and may receive) before :func:`_gather` gives it its
    candidate: media that reaches a reused port in that moment is dropped, as
    aioice drops any datagram of a connection not yet ready for it.
    """

    local_candidate: Candidate | None = None  # type: ignore[assignment]

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        if isinstance(data, bytes) and data and 127 < data[0] < 192:  # RTP/RTCP, not STUN
            candidate = self.local_candidate
            if candidate is not None:
                self.receiver.data_received(data, candidate.component)
            return
        super().datagram_received(data, addr)


async def _gather(conn: Connection, addresses: list[str], ports: tuple[int, int] | None,
                  buffer_bytes: int | None = None) -> None:
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
            if buffer_bytes is not None:
                sock = transport.get_extra_info("socket")
                for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
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
                lambda: _RtpFirstProtocol(conn), local_addr=(address, port),
                family=family)
        except OSError as exc:
            last = exc
            continue
        return transport, protocol
    raise last or OSError(f"no free UDP port on {address} in {ports}")
