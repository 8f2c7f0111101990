"""Every use of aiortc's and aioice's private internals, in one package.

aiortc has no public API for an SFU: it decodes every received track and
encodes every sent one. rtchub forwards RTP packets instead, which needs these
hooks into aiortc 1.16 / aioice 0.13, all here and nowhere else:

1. **ICE gathering** (:mod:`.ice`, aioice ``Connection``): gather exactly the
   configured ``RTC_NODE_IP`` addresses in the ``RTC_UDP_PORTS`` range, on sockets
   that hand RTP/RTCP datagrams on without a failed STUN parse.
2. **Incoming RTP per receiver** (:mod:`.receiver`,
   ``RTCRtpReceiver._handle_rtp_packet``): the voice feature's tap, after aiortc
   parsed and routed the packet.
3. **Outgoing RTP counters** (:mod:`.sender`, ``RTCDtlsTransport._send_rtp`` and
   ``RTCRtpSender``'s name-mangled counters) so aiortc's sender reports match
   what was forwarded.
4. **RTCP feedback for a sender** (:mod:`.sender`,
   ``RTCRtpSender._handle_rtcp_packet``): NACK, PLI, FIR and REMB reach rtchub.
   ``RTCRtpSender._stream_id``/``_track_id`` set the ``a=msid`` it announces.
5. **The SFU's raw packet path** (:mod:`.wire`, aioice ``Connection.data_received``
   and ``_nominated``, ``RTCDtlsTransport._rx_srtp``/``_tx_srtp``/``_state`` and its
   byte counters (brought up to date in ``_get_stats``), ``RTCRtpReceiver``'s
   statistics table, pylibsrtp's ``Session`` buffer): SRTP unprotected and handed
   on as bytes from the socket callback, and protected (``srtp_protect`` without
   pylibsrtp's Python wrapper) and sent synchronously; and which section carries a
   BUNDLE group (``RTCRtpTransceiver._bundled``) for trickled candidates.
6. **The RTCP reports a client sends** (:mod:`.reports`,
   ``RTCDtlsTransport._handle_rtcp_data`` and ``RTCRtpSender``'s ``__lsr`` /
   ``__lsr_time``): receiver report blocks and sender reports as plain values, with
   the round-trip time of each block that echoes the server's last sender report
   (the quality monitor's downlink figures).
7. **Incoming RTCP without aiortc** (:mod:`.rtcp_in`, ``RTCDtlsTransport._rtp_router``,
   ``RTCRtpSender``'s ``__rtt``/``__stats``/``__kind`` and ``RTCRtpReceiver``'s
   ``__stats``/``__lsr``/``__lsr_time``/``__kind``): the SFU's wire unprotects SRTCP
   in the socket callback and hands NACK/PLI/FIR/REMB to the senders' sinks and report
   blocks to the observers at once, keeping the round-trip times and remote statistics
   aiortc's ``getStats`` reports. ``RTCRtpSender._send_rtcp`` is replaced on the SFU's
   senders so that their sender reports leave through the wire at once.

:func:`check_assumptions` verifies each of these against the installed aiortc
and names what changed; the media tests call it first, so an upgrade that
breaks a hook fails loudly instead of silently dropping media.
"""

from __future__ import annotations

from rtchub.media.aiortc_adapter.checks import AdapterBroken, check_assumptions
from rtchub.media.aiortc_adapter.ice import configure_ice
from rtchub.media.aiortc_adapter.receiver import (
    PacketSink,
    request_keyframe,
    send_nack,
    tap_receiver,
    watch_receiver,
)
from rtchub.media.aiortc_adapter.reports import (
    ReportBlock,
    ReportObserver,
    SenderInfo,
    bundled_transport,
    watch_reports,
)
from rtchub.media.aiortc_adapter.sender import (
    FeedbackSink,
    RtcpFeedback,
    RtpOutlet,
    label_sender,
    note_sent,
    sender_ssrcs,
    tap_sender_feedback,
    tap_sender_rtcp,
    watch_sender_rtcp,
)
from rtchub.media.aiortc_adapter.wire import (
    ReceptionStats,
    RtpHandler,
    SrtpWire,
    bundle_primary_mid,
)

__all__ = [
    "AdapterBroken",
    "FeedbackSink",
    "PacketSink",
    "ReceptionStats",
    "ReportBlock",
    "ReportObserver",
    "RtcpFeedback",
    "RtpHandler",
    "RtpOutlet",
    "SenderInfo",
    "SrtpWire",
    "bundle_primary_mid",
    "bundled_transport",
    "check_assumptions",
    "configure_ice",
    "label_sender",
    "note_sent",
    "request_keyframe",
    "send_nack",
    "sender_ssrcs",
    "tap_receiver",
    "tap_sender_feedback",
    "tap_sender_rtcp",
    "watch_receiver",
    "watch_reports",
    "watch_sender_rtcp",
]
