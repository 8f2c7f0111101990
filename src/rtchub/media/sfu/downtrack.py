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
from rtchub.media.keyframes import REORDER_WINDOW, KeyframeGate
from rtchub.media.sfu.continuity import Continuity
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

    Most packets take the steady path: once a packet of an SSRC went out through
    every check, later packets of that SSRC are sent with the offsets in force for
    as long as every check would only say yes (the layer switch's
    ``steady_until``, the keyframe gate's reorder window after its floor, no
    selector, no loss switch). Anything else (the first packet of a source, a
    switch, a gate waiting, a hold) goes through :meth:`_forward`, which clears the
    steady SSRC once the layer switch admitted the packet and sets it again only
    when it sent the packet.
    """

    __slots__ = ("_cache", "_cont", "_floor", "_gate", "_loss", "_mask", "_outlet", "_prefix",
                 "_pt_map", "_resent", "_rtx_seq", "_selector", "_send", "_sender", "_stats",
                 "_steady", "_timed", "_vp8", "active", "estimate", "kind", "layers", "octets",
                 "packets", "rtx_ssrc", "ssrc", "uplink")

    def __init__(self, uplink: TrackUplink, outlet: Outlet, sender: RTCRtpSender,
                 stats: ForwardingStats, cache_size: int = 512,
                 follows: Downtrack | None = None) -> None:
        if cache_size <= 0:
            raise ValueError(f"cache size must be positive, got {cache_size}")
        self.uplink = uplink
        self.kind = uplink.kind
        self._outlet = outlet
        self._send = outlet.send_rtp
        self._sender = sender
        self.ssrc, self.rtx_ssrc = adapter.sender_ssrcs(sender)
        self._stats = stats
        # the packets sent lately by outgoing sequence number: a ring of a power of two
        # at least ``cache_size`` long (a slot's packet says which number it holds)
        size = 1 << (cache_size - 1).bit_length()
        self._cache: list[bytes | None] = [None] * size
        self._mask = size - 1
        self._resent: dict[int, tuple[int, float]] = {}  # seq -> (times, last), recent only
        self._cont = Continuity(uplink.clock_rate, random.randrange(1 << 15),
                                random.randrange(1 << 32))
        self._rtx_seq = random.randrange(1 << 15)
        mime = (uplink.mime or "").lower()
        self._vp8 = Vp8Rewriter() if mime == "video/vp8" else None
        if follows is not None and follows.kind == self.kind:
            # the same sender (SSRC) carries another track now: its sequence numbers and
            # timestamps go on from where they were (SRTP refuses to go back, and the
            # subscriber's jitter buffer sees one continuous stream)
            self._cont = follows._cont
            self._rtx_seq = follows._rtx_seq
            if self._vp8 is not None and follows._vp8 is not None:
                self._vp8 = follows._vp8
        self._pt_map: dict[int, tuple[int, int | None]] = {}
        self._prefix = b""  # the header extension block but its last 3 bytes (the time)
        self._timed = False  # whether the block ends with abs-send-time
        detect = uplink.keyframe_detector()
        self._gate = None if detect is None else KeyframeGate(detect)
        self._floor: int | None = None  # the gate's floor, as the steady path reads it
        # simulcast: the layer this subscriber gets (every packet passes with one layer)
        self.layers = None if detect is None else LayerSwitch(
            uplink, detect, uplink.request_keyframe, uplink.clock)
        self._selector: LayerSelector | None = None
        self._loss: DropEvery | None = None
        self._steady = -1  # the SSRC whose packets take the steady path (-1: none)
        self.active = False
        self.packets: int = 0 if follows is None else follows.packets
        self.octets: int = 0 if follows is None else follows.octets
        self.estimate: int | None = None  # this subscriber's REMB share for the track

    @property
    def selector(self) -> LayerSelector | None:
        """A filter set from outside (the call feature's hold); None: forward what
        ``layers`` admits."""
        return self._selector

    @selector.setter
    def selector(self, selector: LayerSelector | None) -> None:
        self._selector = selector
        self._steady = -1

    @property
    def loss(self) -> DropEvery | None:
        """A test switch: drop some packets on the way out (None: none)."""
        return self._loss

    @loss.setter
    def loss(self, loss: DropEvery | None) -> None:
        self._loss = loss
        self._steady = -1

    def configure(self, pt_map: dict[int, tuple[int, int | None]],
                  extensions: ExtensionWriter | None) -> None:
        """Payload types and header extensions the subscriber negotiated."""
        self._pt_map = pt_map
        ext = None if extensions is None or extensions.empty else extensions
        self._prefix = b"" if ext is None else ext.prefix
        self._timed = ext is not None and ext.has_time
        self._steady = -1

    @property
    def negotiated(self) -> bool:
        """True when the subscriber accepted at least one codec the publisher sends."""
        return bool(self._pt_map)

    def start(self) -> None:
        """Forward from now on (the subscriber has the SDP): asks for a keyframe."""
        if self.active:
            return
        self.active = True
        self._steady = -1
        self.uplink.attach(self)
        if self._gate is not None:
            self._gate.reset()
            self.uplink.request_keyframe(self._wanted_layer)

    def stop(self) -> None:
        """Stop forwarding (unsubscribed, or the track ended)."""
        self.active = False
        self._steady = -1
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
        layers = self.layers
        if packet.ssrc != self._steady:
            if layers is not None and packet.now < layers.steady_until:
                index = packet.layer
                current = layers.current
                if (current is not None and index != current
                        and not current < index <= layers.wish):
                    return  # another layer's packet: refused as admit would, no decision
            self._forward(packet)
            return
        if layers is not None and packet.now >= layers.steady_until:
            self._forward(packet)
            return
        seq = packet.seq
        floor = self._floor
        if floor is not None and (seq - floor) & 0xFFFF >= REORDER_WINDOW:
            self._forward(packet)
            return
        mapped = self._pt_map.get(packet.payload_type)
        if mapped is None:
            return
        # the steady path: what _forward does when every check says yes
        cont = self._cont
        out_seq = (seq + cont.seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + cont.ts_offset) & 0xFFFFFFFF
        if (seq - cont.highest) & 0xFFFF < 0x8000:  # in order
            cont.highest = seq
            cont.highest_ts = packet.timestamp
            cont.highest_ms = packet.arrival_ms
        vp8 = self._vp8
        if vp8 is None:
            tail = packet.timed if self._timed else packet.payload
        elif vp8.pid_offset or vp8.tl0_offset:
            tail = self._vp8_tail(vp8, packet)
        else:
            desc = packet.vp8
            if desc is not None:
                vp8.note(desc.picture_id, desc.tl0)
            tail = packet.timed if self._timed else packet.payload
        prefix = self._prefix
        data = FIXED.pack(0x90 if prefix else 0x80, mapped[0] | 0x80 if packet.marker
                          else mapped[0], out_seq, timestamp, self.ssrc) + prefix + tail
        self._cache[out_seq & self._mask] = data
        if not self._send(data):
            self._steady = -1
            if self._gate is not None:
                self._gate.reset()  # the keyframe did not reach the subscriber: wait for another
            return
        self.packets += 1
        self.octets += len(packet.payload)
        self._stats.packets_forwarded += 1
        if not self.packets & 15:  # a few times a second: aiortc's SRs go out each second
            adapter.note_sent(self._sender, timestamp, self.packets, self.octets)

    def _vp8_tail(self, vp8: Vp8Rewriter, packet: InboundPacket) -> bytes:
        """The copy's payload with its VP8 ids rewritten (and the time before it)."""
        desc = packet.vp8
        payload = (vp8.rewrite(packet.ssrc, packet.payload) if desc is None
                   else vp8.rewrite_described(packet.ssrc, packet.payload, desc))
        if not self._timed:
            return payload
        if payload is packet.payload:
            return packet.timed
        return packet.timed[:3] + payload

    def _forward(self, packet: InboundPacket) -> None:
        """Every check, then the copy; sets the steady SSRC when the packet went out."""
        if not self.active:
            return
        mapped = self._pt_map.get(packet.payload_type)
        if mapped is None:
            return
        layers = self.layers
        if layers is not None and not layers.admit(packet):
            # another layer's packet, refused: the current layer's steady path stands
            # (its ``steady_until`` says whether the refusal changed the choice)
            return
        # from here on the packet may change what the steady path relies on (a switch,
        # the gate): it is set again only if this packet goes out
        self._steady = -1
        selector = self._selector
        if selector is not None and not selector.admit(packet):
            return
        gate = self._gate
        if gate is not None:
            if not gate.admit(packet.ssrc, packet.seq, packet.timestamp, packet.payload):
                self._stats.packets_gated += 1
                self.uplink.request_keyframe(packet.layer)
                return
            self._floor = gate.floor
        seq, timestamp = self._cont.translate(packet.ssrc, packet.seq, packet.timestamp,
                                              packet.arrival_ms)
        second = mapped[0] | 0x80 if packet.marker else mapped[0]
        vp8 = self._vp8
        if vp8 is not None:
            tail = self._vp8_tail(vp8, packet)
        else:
            tail = packet.timed if self._timed else packet.payload
        prefix = self._prefix
        data = FIXED.pack(0x90 if prefix else 0x80, second, seq, timestamp, self.ssrc) \
            + prefix + tail
        self._cache[seq & self._mask] = data
        loss = self._loss
        if loss is not None and loss.drop():
            return
        if not self._send(data):
            if gate is not None:
                gate.reset()  # the keyframe did not reach the subscriber: wait for another
            return
        if selector is None and loss is None and (vp8 is None or packet.vp8 is not None):
            self._steady = packet.ssrc
        self.packets += 1
        self.octets += len(packet.payload)
        self._stats.packets_forwarded += 1
        if not self.packets & 15:  # a few times a second: aiortc's SRs go out each second
            adapter.note_sent(self._sender, timestamp, self.packets, self.octets)

    def _cached(self, seq: int) -> bytes | None:
        """The packet sent as ``seq``, if still cached."""
        data = self._cache[seq & self._mask]
        if data is None or (data[2] << 8 | data[3]) != seq:
            return None
        return data

    # -- feedback from the subscriber ------------------------------------------------------

    def on_feedback(self, feedback: adapter.RtcpFeedback) -> None:
        """NACK, PLI/FIR or REMB from the subscriber about this track (see the module doc)."""
        stats = self._stats
        now = self.uplink.clock()
        resent = self._resent
        if len(resent) > 4 * len(feedback.nacked) + 256:
            resent.clear()  # bounded: forget old resends, the cache forgets their packets
        for seq in feedback.nacked:
            data = self._cached(seq)
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
