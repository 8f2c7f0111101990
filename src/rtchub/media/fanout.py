"""Thin I/O around :mod:`rtchub.media.forwarding`: one uplink fans out to downtracks.

An :class:`Uplink` receives the sender's RTP packets (through the adapter's
receiver tap) and hands each one, unchanged in payload, to every
:class:`Downtrack` of a snapshot of its subscribers, and to packet listeners
such as the MP3 encoder. A downtrack rewrites the header for its receiver,
caches what it sent for NACKs, and turns PLI/FIR into a throttled keyframe
request upstream. A video downtrack (its negotiated codec has a detector in
:mod:`rtchub.media.keyframes`) forwards nothing of a source until a packet that
starts a keyframe, asking upstream for one meanwhile; audio is never gated.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RtpPacket

from rtchub.media import aiortc_adapter as adapter
from rtchub.media.forwarding import (
    KeyframeThrottle,
    PacketCache,
    Rewriter,
    rtp_packet,
    rtx_packet,
)
from rtchub.media.keyframes import KeyframeGate

__all__ = ["Downtrack", "ForwardingStats", "PacketListener", "Uplink"]

log = logging.getLogger("rtchub.media")

PacketListener = Callable[[RtpPacket], None]


class ForwardingStats:
    """Counters of the media plane, read at scrape time."""

    __slots__ = ("bytes_in", "changed", "fanout_max", "fanout_seconds", "keyframe_requests",
                 "keyframe_requests_in", "lost_in", "nack_hits", "nack_misses",
                 "packets_forwarded", "packets_gated", "packets_in", "retransmitted")

    def __init__(self, changed: Callable[[], None] = lambda: None) -> None:
        self.changed = changed  # poked on every change (a no-op unless someone waits)
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_forwarded = 0
        self.packets_gated = 0  # video packets held back until a receiver's keyframe
        self.nack_hits = 0  # NACKed packets found in the cache
        self.nack_misses = 0  # NACKed packets no longer (or never) cached
        self.retransmitted = 0  # RTX packets sent
        self.fanout_seconds = 0.0  # time from a packet's arrival to its last copy sent
        self.fanout_max = 0.0
        self.keyframe_requests = 0
        self.keyframe_requests_in = 0
        self.lost_in = 0  # packets missing from senders' streams (NACKed upstream by the SFU)


class Uplink:
    """The sender's side of a stream: taps its receiver, feeds downtracks and listeners."""

    def __init__(self, receiver: RTCRtpReceiver | None, stats: ForwardingStats,
                 keyframe_interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._receiver = receiver
        self._stats = stats
        self._downtracks: dict[int, Downtrack] = {}
        self._snapshot: tuple[Downtrack, ...] = ()
        self._listeners: dict[int, PacketListener] = {}
        self._throttle = KeyframeThrottle(keyframe_interval)
        self._clock = clock
        self.source_ssrc: int | None = None
        self.closed = False
        if receiver is not None:    # None: fed by hand (a stream relayed from another node)
            adapter.tap_receiver(receiver, self._on_packet)
        self.feed = self._on_packet

    @property
    def downtracks(self) -> tuple[Downtrack, ...]:
        """The receivers currently fed (a snapshot)."""
        return self._snapshot

    def attach(self, downtrack: Downtrack) -> None:
        """Start feeding ``downtrack`` (a video one asks for a keyframe with the first
        packet its gate holds back)."""
        self._downtracks[id(downtrack)] = downtrack
        self._snapshot = tuple(self._downtracks.values())
        downtrack.uplink = self

    def detach(self, downtrack: Downtrack) -> None:
        """Stop feeding ``downtrack``."""
        if self._downtracks.pop(id(downtrack), None) is not None:
            self._snapshot = tuple(self._downtracks.values())
        if downtrack.uplink is self:
            downtrack.uplink = None

    def listen(self, key: int, listener: PacketListener) -> None:
        """Also give every packet to ``listener`` (e.g. the MP3 encoder)."""
        self._listeners[key] = listener

    def unlisten(self, key: int) -> None:
        """Remove a listener added with :meth:`listen`."""
        self._listeners.pop(key, None)

    def close(self) -> None:
        """Detach everything; later packets are dropped."""
        self.closed = True
        for downtrack in self._snapshot:
            downtrack.uplink = None
        self._downtracks.clear()
        self._snapshot = ()
        self._listeners.clear()

    async def _on_packet(self, packet: RtpPacket, arrival_ms: int) -> None:
        if self.closed:
            return
        started = time.perf_counter()
        stats = self._stats
        stats.packets_in += 1
        stats.bytes_in += len(packet.payload)
        stats.changed()
        self.source_ssrc = packet.ssrc
        for downtrack in self._snapshot:
            await downtrack.forward(packet, arrival_ms)
        took = time.perf_counter() - started
        stats.fanout_seconds += took
        stats.fanout_max = max(stats.fanout_max, took)
        # listeners (the MP3 encoder) run after the forwarding, off its latency
        for listener in tuple(self._listeners.values()):
            try:
                listener(packet)
            except Exception:
                log.exception("packet listener failed")

    @property
    def keyframes_combined(self) -> int:
        """Keyframe requests folded into one already sent."""
        return self._throttle.combined

    async def request_keyframe(self) -> None:
        """PLI upstream, at most once per ``keyframe_interval``."""
        ssrc = self.source_ssrc
        if (ssrc is None or self.closed or self._receiver is None
                or not self._throttle.allow(self._clock())):
            return
        self._stats.keyframe_requests += 1
        await adapter.request_keyframe(self._receiver, ssrc)


class Downtrack:
    """One receiver's forwarded copy of a stream: rewrite, send, cache, answer feedback."""

    __slots__ = ("_cache", "_gate", "_outlet", "_payload_type", "_rewriter", "_rtx_pt",
                 "_rtx_seq", "_stats", "closed", "uplink")

    def __init__(self, sender: RTCRtpSender, payload_type: int, clock_rate: int,
                 stats: ForwardingStats, rtx_payload_type: int | None = None,
                 cache_size: int = 512, codec: str = "audio/opus") -> None:
        self._outlet = adapter.RtpOutlet(sender)
        self._payload_type = payload_type
        self._rtx_pt = rtx_payload_type
        self._rtx_seq = random.randrange(1 << 16)
        self._rewriter = Rewriter(clock_rate, random.randrange(1 << 16),
                                  random.randrange(1 << 32))
        self._cache = PacketCache(cache_size)
        self._gate = KeyframeGate.for_codec(codec)  # None: audio, never gated
        self._stats = stats
        self.uplink: Uplink | None = None
        self.closed = False
        adapter.tap_sender_feedback(sender, self._on_feedback)

    async def forward(self, packet: RtpPacket, arrival_ms: int) -> None:
        """Rewrite ``packet`` for this receiver and send it."""
        if self.closed:
            return
        gate = self._gate
        if gate is not None and not gate.admit(packet.ssrc, packet.sequence_number,
                                               packet.timestamp, packet.payload):
            self._stats.packets_gated += 1
            self._stats.changed()
            if self.uplink is not None:
                await self.uplink.request_keyframe()  # throttled and combined per uplink
            return
        out = self._rewriter.translate(packet.ssrc, packet.sequence_number, packet.timestamp,
                                       arrival_ms)
        data = rtp_packet(bool(packet.marker), self._payload_type, out.seq, out.timestamp,
                          self._outlet.ssrc, packet.payload)
        self._cache.put(out.seq, data)
        try:
            await self._outlet.send(data, out.timestamp, len(packet.payload))
        except ConnectionError:
            # not connected yet, or gone: the packet is simply not delivered, and a video
            # receiver waits for a keyframe it really gets
            if gate is not None:
                gate.reset()
            return
        except Exception:
            # one receiver's failure (e.g. SRTP) must not stop the fan-out to the others
            log.exception("forwarding to a receiver failed; closing its downtrack")
            self.closed = True
            return
        self._stats.packets_forwarded += 1

    async def _on_feedback(self, feedback: adapter.RtcpFeedback) -> None:
        for seq in feedback.nacked:
            data = self._cache.get(seq)
            if data is None:
                self._stats.nack_misses += 1
                self._stats.changed()
                continue
            self._stats.nack_hits += 1
            self._stats.changed()
            if self._rtx_pt is None:
                continue  # without RTX a resend would be dropped as an SRTP replay
            rtx = rtx_packet(data, self._rtx_pt, self._rtx_seq, self._outlet.rtx_ssrc)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            try:
                await self._outlet.resend(rtx)
            except ConnectionError:
                return
            self._stats.retransmitted += 1
        if feedback.keyframe:
            self._stats.keyframe_requests_in += 1
            self._stats.changed()
        if feedback.keyframe and self.uplink is not None:
            await self.uplink.request_keyframe()

    @property
    def waiting_for_keyframe(self) -> bool:
        """True for a video downtrack whose gate has not opened yet."""
        return self._gate is not None and self._gate.source is None

    @property
    def packets_sent(self) -> int:
        """Packets sent to this receiver (what its sender reports count)."""
        return self._outlet.packets
