"""The adapter's assumptions about aiortc and aioice, checked against what is installed."""

from __future__ import annotations

import pylibsrtp
from aioice import Candidate, Connection
from aioice import ice as aioice_ice
from aiortc import RTCConfiguration, RTCPeerConnection, rtp
from aiortc import rtcrtpreceiver as aiortc_receiver
from aiortc.rtcdtlstransport import State as DtlsState

from rtchub.media.aiortc_adapter.receiver import RECEIVER_CODECS, RECEIVER_STREAMS
from rtchub.media.aiortc_adapter.reports import SENDER_LSR, SENDER_LSR_TIME
from rtchub.media.aiortc_adapter.rtcp_in import (
    RECEIVER_KIND,
    RECEIVER_LSR,
    RECEIVER_LSR_TIME,
    RECEIVER_STATS,
    SENDER_KIND,
    SENDER_RTT,
    SENDER_STATS,
)
from rtchub.media.aiortc_adapter.sender import (
    SENDER_NTP,
    SENDER_OCTETS,
    SENDER_PACKETS,
    SENDER_RTP_TS,
    label_sender,
)
from rtchub.media.aiortc_adapter.wire import (
    DTLS_RX_BYTES,
    DTLS_RX_PACKETS,
    DTLS_TX_BYTES,
    DTLS_TX_PACKETS,
    _Protector,
)

__all__ = ["AdapterBroken", "check_assumptions"]


class AdapterBroken(RuntimeError):
    """The installed aiortc/aioice no longer has what this adapter relies on."""


def _missing(obj: object, names: tuple[str, ...]) -> list[str]:
    return [f"{type(obj).__name__} has no {name}" for name in names if not hasattr(obj, name)]


def _srtp_problems() -> list[str]:
    """The fast SRTP path protects with pylibsrtp's own context and buffer: it must
    still produce what ``Session.protect`` produces."""
    key = bytes(range(30))
    policy = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    packet = bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7]) + b"payload"
    report = bytes([0x80, 201, 0, 1, 0, 0, 0, 7])  # an RTCP receiver report, no blocks
    try:
        fast = _Protector(pylibsrtp.Session(policy)).protect(packet)
        slow = pylibsrtp.Session(policy).protect(packet)
        fast_rtcp = _Protector(pylibsrtp.Session(policy)).protect_rtcp(report)
        slow_rtcp = pylibsrtp.Session(policy).protect_rtcp(report)
    except (AttributeError, TypeError) as exc:
        return [f"pylibsrtp's Session internals changed ({exc})"]
    if fast != slow:
        return ["pylibsrtp: srtp_protect on the session buffer differs from Session.protect"]
    if fast_rtcp != slow_rtcp:
        return ["pylibsrtp: srtp_protect_rtcp on the session buffer differs from "
                "Session.protect_rtcp"]
    return []


async def check_assumptions() -> None:
    """Raise :class:`AdapterBroken` naming every private detail that is gone."""
    problems: list[str] = []
    conn = Connection(ice_controlling=False)
    problems += _missing(conn, ("_local_candidates_start", "_local_candidates_end",
                                "_local_candidates", "_protocols", "_components", "_use_ipv4",
                                "_use_ipv6", "_nominated", "_queue", "data_received",
                                "query_consent", "_query_consent_task", "build_request",
                                "remote_password"))
    if not callable(getattr(aioice_ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is gone")
    protocol_class = getattr(aioice_ice, "StunProtocol", None)
    if not isinstance(protocol_class, type) or not hasattr(protocol_class,
                                                             "datagram_received"):
        problems.append("aioice.ice.StunProtocol is gone")
    pair_class = getattr(aioice_ice, "CandidatePair", None)
    if pair_class is None:
        problems.append("aioice.ice.CandidatePair is gone")
    else:
        remote = Candidate(foundation="x", component=1, transport="udp", priority=1,
                           host="127.0.0.1", port=9, type="host")
        problems += _missing(pair_class(None, remote), ("protocol", "remote_candidate"))
    statistics = getattr(aiortc_receiver, "StreamStatistics", None)
    if statistics is None:
        problems.append("aiortc.rtcrtpreceiver.StreamStatistics is gone")
    else:
        problems += _missing(statistics(90000), ("packets_received", "max_seq"))
        problems += [f"StreamStatistics has no {name}" for name in
                     ("add", "packets_lost", "jitter") if not hasattr(statistics, name)]
    if not hasattr(DtlsState, "CONNECTED"):
        problems.append("aiortc.rtcdtlstransport.State has no CONNECTED")
    if not callable(getattr(rtp, "unpack_remb_fci", None)):
        problems.append("aiortc.rtp.unpack_remb_fci is gone")
    problems += _srtp_problems()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        if not isinstance(getattr(gatherer, "_connection", None), Connection):
            problems.append("RTCIceGatherer._connection is not an aioice Connection")
        receiver, sender = transceiver.receiver, transceiver.sender
        dtls = sender.transport
        problems += _missing(receiver, ("_handle_rtp_packet", "_send_rtcp_pli",
                                        "_send_rtcp_nack", RECEIVER_STREAMS, RECEIVER_CODECS,
                                        RECEIVER_STATS, RECEIVER_LSR, RECEIVER_LSR_TIME,
                                        RECEIVER_KIND))
        problems += _missing(sender, ("_ssrc", "_rtx_ssrc", "_stream_id", "_track_id",
                                      "_handle_rtcp_packet", "_send_rtcp", SENDER_NTP,
                                      SENDER_RTP_TS, SENDER_OCTETS, SENDER_PACKETS, SENDER_LSR,
                                      SENDER_LSR_TIME, SENDER_RTT, SENDER_STATS, SENDER_KIND))
        problems += _missing(dtls, ("_send_rtp", "_rx_srtp", "_tx_srtp", "_state", "_get_stats",
                                    "_handle_rtcp_data", "_rtp_router", "_stats_id",
                                    DTLS_RX_BYTES, DTLS_RX_PACKETS, DTLS_TX_BYTES,
                                    DTLS_TX_PACKETS))
        problems += _missing(getattr(dtls, "_rtp_router", None),
                             ("senders", "ssrc_table", "receivers"))
        problems += _missing(transceiver, ("_bundled",))
        pc.createDataChannel("rtchub-check")
        problems += _missing(pc.sctp, ("_bundled", "mid"))
        if getattr(dtls.transport, "_connection", None) is not gatherer._connection:
            problems.append("RTCIceTransport._connection is not its gatherer's connection")
        # the msid a sender announces comes from the two fields label_sender sets
        label_sender(sender, "rtchub-stream", "rtchub-track")
        offer = await pc.createOffer()
        if "a=msid:rtchub-stream rtchub-track" not in offer.sdp:
            problems.append("RTCRtpSender._stream_id/_track_id no longer make its a=msid")
    finally:
        await pc.close()
    if problems:
        raise AdapterBroken("aiortc/aioice changed under rtchub's media adapter: "
                            + "; ".join(problems))
