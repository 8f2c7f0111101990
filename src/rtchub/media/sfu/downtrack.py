"""One subscriber's copy of a published track: rewrite, send, cache, answer feedback.

A :class:`Downtrack` sits on a sendonly transceiver of the subscriber's peer
connection. For every packet its uplink hands it, it asks its
:class:`~.layers.LayerSwitch` (video: which simulcast layer this subscriber
gets), its selector (the call feature's hold) and its keyframe gate (video)
whether to forward, rewrites the header for this subscriber (its SSRC,
its payload type for the codec, a continuous sequence number and timestamp,
its header extension ids with MID and abs-send-time; a continuous VP8 picture
id and TL0PICIDX across layer switches), caches the packet for
NACKs and sends it synchronously. Feedback from the subscriber comes back
through the sender's RTCP tap: NACKs are answered from the cache (as RTX when
negotiated), PLI/FIR become a throttled keyframe request upstream, REMB
becomes this subscriber's estimate for the track.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Final, Protocol

from aiortc import RTCRtpSender

from rtchub.media import aiortc_adapter as adapter
from rtchub.media.fanout import ForwardingStats
from rtchub.media.forwarding import PacketCache, Rewriter
from rtchub.media.keyframes import KeyframeGate
from rtchub.media.sfu.layers import LayerSwitch
from rtchub.media.sfu.loss import DropEvery
from rtchub.media.sfu.rtcp import remb_share
from rtchub.media.sfu.rtp import FIXED, ExtensionWriter, rtx_wrap
from rtchub.media.sfu.sdp import Codec
from rtchub.media.sfu.uplink import InboundPacket, TrackUplink
from rtchub.media.sfu.vp8 import Vp8Rewriter

__all__ = ["Downtrack", "LayerSelector", "Outlet", "payload_map"]

log = logging.getLogger("rtchub.media")

# A packet is resent at most this often, this far apart: a receiver re-NACKs every
# packet still missing whenever it sees a new gap, and a retransmission that does not
# get through (or is merely slow) must not turn that into a storm.
MAX_RESENDS: Final = 2
RESEND_GAP: Final = 0.05


class Outlet(Protocol):
    """Where a downtrack's packets go (the subscriber's wire)."""

    def send_rtp(self, packet: bytes) -> bool:
        """Send one RTP packet; False when not connected."""
        ...


class LayerSelector(Protocol):
    """A filter set on a downtrack from outside (the call feature's hold).

    ``admit`` sees the packets the :class:`~.layers.LayerSwitch` let through,
    before the keyframe gate. ``layer`` is kept for implementations written to
    the first version of this protocol; the downtrack asks its ``layers`` which
    layer it waits for.
    """

    @property
    def layer(self) -> int:
        """The layer being forwarded (or switched to)."""
        ...

    def admit(self, packet: InboundPacket) -> bool:
        """Whether ``packet`` (of ``packet.layer``) goes to this subscriber."""
        ...


def payload_map(publisher: Mapping[int, Codec],
                subscriber: Mapping[int, Codec]) -> dict[int, tuple[int, int | None]]:
    """For each publisher media payload type, the subscriber's payload type for the
    same codec and the subscriber's RTX payload type for it (None without RTX)."""
    mapping: dict[int, tuple[int, int | None]] = {}
    for pt, codec in publisher.items():
        if codec.is_rtx:
            continue
        match = next((c for c in subscriber.values()
                      if not c.is_rtx and c.key == codec.key), None)
        if match is None:
            continue
        rtx = next((c.payload_type for c in subscriber.values()
                    if c.is_rtx and c.apt == match.payload_type), None)
        mapping[pt] = (match.payload_type, rtx)
    return mapping


class Downtrack:
    """The forwarding state of one (track, subscriber) pair; see the module doc.

    ``follows`` is the downtrack that used the same sender before (a reused
    transceiver): this one continues its sequence numbers, timestamps and counts.
    """

    __slots__ = ("_cache", "_ext", "_gate", "_outlet", "_pt_map", "_resent", "_rewriter",
                 "_rtx_seq", "_sender", "_stats", "_vp8", "active", "estimate", "kind", "layers",
                 "loss", "octets", "packets", "rtx_ssrc", "selector", "ssrc", "uplink")

    def __init__(self, uplink: TrackUplink, outlet: Outlet, sender: RTCRtpSender,
                 stats: ForwardingStats, cache_size: int = 512,
                 follows: Downtrack | None = None) -> None:
        self.uplink = uplink
        self.kind = uplink.kind
        self._outlet = outlet
        self._sender = sender
        self.ssrc, self.rtx_ssrc = adapter.sender_ssrcs(sender)
        self._stats = stats
        self._cache = PacketCache(cache_size)
        self._resent: dict[int, tuple[int, float]] = {}  # seq -> (times, last), recent only
        self._rewriter = Rewriter(uplink.clock_rate, random.randrange(1 << 15),
                                  random.randrange(1 << 32))
        self._rtx_seq = random.randrange(1 << 15)
        mime = (uplink.mime or "").lower()
        self._vp8 = Vp8Rewriter() if mime == "video/vp8" else None
        if follows is not None and follows.kind == self.kind:
            # the same sender (SSRC) carries another track now: its sequence numbers and
            # timestamps go on from where they were (SRTP refuses to go back, and the
            # subscriber's jitter buffer sees one continuous stream)
            self._rewriter = follows._rewriter
            self._rtx_seq = follows._rtx_seq
            if self._vp8 is not None and follows._vp8 is not None:
                self._vp8 = follows._vp8
        self._pt_map: dict[int, tuple[int, int | None]] = {}
        self._ext: ExtensionWriter | None = None
        detect = uplink.keyframe_detector()
        self._gate = None if detect is None else KeyframeGate(detect)
        # simulcast: the layer this subscriber gets (every packet passes with one layer)
        self.layers = None if detect is None else LayerSwitch(
            uplink, detect, uplink.request_keyframe, uplink.clock)
        self.selector: LayerSelector | None = None  # None: forward what ``layers`` admits
        self.loss: DropEvery | None = None  # a test switch: drop some packets on the way out
        self.active = False
        self.packets: int = 0 if follows is None else follows.packets
        self.octets: int = 0 if follows is None else follows.octets
        self.estimate: int | None = None  # this subscriber's REMB share for the track

    def configure(self, pt_map: dict[int, tuple[int, int | None]],
                  extensions: ExtensionWriter | None) -> None:
        """Payload types and header extensions the subscriber negotiated."""
        self._pt_map = pt_map
        self._ext = None if extensions is None or extensions.empty else extensions

    @property
    def negotiated(self) -> bool:
        """True when the subscriber accepted at least one codec the publisher sends."""
        return bool(self._pt_map)

    def start(self) -> None:
        """Forward from now on (the subscriber has the SDP): asks for a keyframe."""
        if self.active:
            return
        self.active = True
        self.uplink.attach(self)
        if self._gate is not None:
            self._gate.reset()
            self.uplink.request_keyframe(self._wanted_layer)

    def stop(self) -> None:
        """Stop forwarding (unsubscribed, or the track ended)."""
        self.active = False
        self.uplink.detach(self)

    @property
    def _wanted_layer(self) -> int:
        layers = self.layers
        return 0 if layers is None else layers.layer

    @property
    def waiting_for_keyframe(self) -> bool:
        """True for a video downtrack whose gate has not opened yet."""
        return self._gate is not None and self._gate.source is None

    def forward(self, packet: InboundPacket) -> None:
        """Rewrite ``packet`` for this subscriber and send it (see the module doc)."""
        if not self.active:
            return
        mapped = self._pt_map.get(packet.payload_type)
        if mapped is None:
            return
        layers = self.layers
        if layers is not None and not layers.admit(packet):
            return
        selector = self.selector
        if selector is not None and not selector.admit(packet):
            return
        gate = self._gate
        if gate is not None and not gate.admit(packet.ssrc, packet.seq, packet.timestamp,
                                               packet.payload):
            self._stats.packets_gated += 1
            self.uplink.request_keyframe(packet.layer)
            return
        seq, timestamp = self._rewriter.translate_pair(packet.ssrc, packet.seq,
                                                       packet.timestamp, packet.arrival_ms)
        second = mapped[0] | 0x80 if packet.marker else mapped[0]
        payload = packet.payload
        if self._vp8 is not None:
            payload = self._vp8.rewrite(packet.ssrc, payload)
        ext = self._ext
        if ext is None:
            data = FIXED.pack(0x80, second, seq, timestamp, self.ssrc) + payload
        else:
            data = (FIXED.pack(0x90, second, seq, timestamp, self.ssrc)
                    + ext.block(packet.send_time) + payload)
        self._cache.put(seq, data)
        loss = self.loss
        if loss is not None and loss.drop():
            return
        if not self._outlet.send_rtp(data):
            if gate is not None:
                gate.reset()  # the keyframe did not reach the subscriber: wait for another
            return
        self.packets += 1
        self.octets += len(packet.payload)
        self._stats.packets_forwarded += 1
        if not self.packets & 15:  # a few times a second: aiortc's SRs go out each second
            adapter.note_sent(self._sender, timestamp, self.packets, self.octets)

    # -- feedback from the subscriber ------------------------------------------------------

    def on_feedback(self, feedback: adapter.RtcpFeedback) -> None:
        """NACK, PLI/FIR or REMB from the subscriber about this track (see the module doc)."""
        stats = self._stats
        now = self.uplink.clock()
        resent = self._resent
        if len(resent) > 4 * len(feedback.nacked) + 256:
            resent.clear()  # bounded: forget old resends, the cache forgets their packets
        for seq in feedback.nacked:
            data = self._cache.get(seq)
            if data is None:
                stats.nack_misses += 1
                continue
            stats.nack_hits += 1
            times, last = resent.get(seq, (0, -RESEND_GAP))
            if times >= MAX_RESENDS or now - last < RESEND_GAP:
                continue
            resent[seq] = (times + 1, now)
            rtx_pt = self._rtx_payload_type(data)
            if rtx_pt is not None:
                data = rtx_wrap(data, rtx_pt, self._rtx_seq, self.rtx_ssrc)
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            # without RTX the packet goes again as it was: the subscriber never got it,
            # so its SRTP replay window lets it in
            if self._outlet.send_rtp(data):
                stats.retransmitted += 1
        if feedback.keyframe:
            stats.keyframe_requests_in += 1
            self.uplink.request_keyframe(self._wanted_layer)
        if feedback.bitrate is not None:
            self.estimate = remb_share(feedback.bitrate, feedback.ssrcs, (self.rtx_ssrc,))
            self.uplink.note_estimate(self, self.estimate)
        stats.changed()

    def _rtx_payload_type(self, packet: bytes) -> int | None:
        payload_type = packet[1] & 0x7F
        for media, rtx in self._pt_map.values():
            if media == payload_type:
                return rtx
        return None
