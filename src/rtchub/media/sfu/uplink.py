"""One published track's packets on the way in, fanned out to its subscribers.

A :class:`TrackUplink` gets raw RTP of its track from the peer's demuxer
(already unprotected, one call per packet, synchronously from the socket
callback). It reads the header fields it needs from the bytes, unwraps the
publisher's retransmissions, feeds aiortc's receiver reports, asks the
publisher to resend what went missing (NACK), reads the audio level, and
hands one :class:`InboundPacket` to every :class:`~.downtrack.Downtrack` of a
snapshot of its subscribers. It also speaks for them upstream: keyframe
requests (PLI, at most one per ``keyframe_interval`` per layer) and the
bitrate they can take (REMB, sent by the peer).

A track has one or more :class:`Layer`\\ s (simulcast encodings, issue 11); a
packet carries its layer index, and each downtrack's layer selector decides
whether it wants that layer.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol

from aiortc import RTCRtpReceiver

from rtchub.media.aiortc_adapter import ReceptionStats
from rtchub.media.fanout import ForwardingStats
from rtchub.media.forwarding import KeyframeThrottle
from rtchub.media.keyframes import detector
from rtchub.media.sfu.loss import MissingTracker
from rtchub.media.sfu.remb import BitrateEstimates
from rtchub.media.sfu.rtcp import nack, pli
from rtchub.media.sfu.rtp import audio_level, find_extension
from rtchub.media.sfu.sdp import Codec
from rtchub.media.sfu.vp8 import Vp8Descriptor

if TYPE_CHECKING:
    from rtchub.media.sfu.downtrack import Downtrack

__all__ = ["RATE_WINDOW", "AudioLevelListener", "InboundPacket", "Layer", "PacketListener",
           "TrackUplink", "Upstream"]

log = logging.getLogger("rtchub.media")

_EXT_HEAD: Final = struct.Struct("!HH")
RATE_WINDOW: Final = 1.0  # seconds over which a layer's bitrate is measured

AudioLevelListener = Callable[[int, bool], None]  # level in -dBov (127 = silence), voice flag
PacketListener = Callable[["InboundPacket"], None]


class Upstream(Protocol):
    """Where a track's feedback to its publisher goes (the publisher's wire)."""

    def send_rtcp(self, packet: bytes) -> bool:
        """Send one RTCP packet to the publisher."""
        ...

    @property
    def connected(self) -> bool:
        """Whether a packet sent now can reach the publisher."""
        ...


class InboundPacket:
    """One packet of a published track, as every downtrack sees it (read-only).

    Besides the header fields it carries what is the same in every subscriber's
    copy, worked out once: ``timed`` (the 3 bytes of the abs-send-time extension
    followed by the payload: the tail of a copy whose extension block ends with
    that time, see :class:`~.rtp.ExtensionWriter`), ``vp8`` (the VP8 payload
    descriptor's picture id and TL0PICIDX, None for other codecs) and ``now``
    (the uplink's clock when it arrived).
    """

    __slots__ = ("arrival_ms", "layer", "marker", "now", "payload", "payload_type", "send_time",
                 "seq", "ssrc", "timed", "timestamp", "vp8")

    def __init__(self, ssrc: int, seq: int, timestamp: int, marker: bool, payload_type: int,
                 payload: bytes, layer: int, arrival_ms: int, now: float = 0.0,
                 vp8: bool = False) -> None:
        self.ssrc = ssrc
        self.seq = seq
        self.timestamp = timestamp
        self.marker = marker
        self.payload_type = payload_type  # the publisher's (media, never RTX) payload type
        self.payload = payload
        self.layer = layer
        self.arrival_ms = arrival_ms
        self.now = now
        send_time = self.send_time = int(arrival_ms * 262.144) & 0xFFFFFF  # abs-send-time
        self.timed = send_time.to_bytes(3, "big") + payload
        self.vp8 = Vp8Descriptor(payload) if vp8 else None


class Layer:
    """One encoding of a published track: its SSRCs and what is known about its stream.

    ``last_seen`` is when its last media packet arrived (the uplink's clock, None before
    the first) and ``bitrate`` its payload bits per second over the last whole
    :data:`RATE_WINDOW` (0 until one has passed): what layer selection and adaptive
    quality read.
    """

    __slots__ = ("_window_bytes", "_window_start", "bitrate", "index", "last_seen", "missing",
                 "packets", "reception", "rid", "rtx_ssrc", "ssrc", "throttle")

    def __init__(self, index: int, keyframe_interval: float, rid: str | None = None) -> None:
        self.index = index
        self.rid = rid
        self.ssrc: int | None = None
        self.rtx_ssrc: int | None = None
        self.reception: ReceptionStats | None = None
        self.missing: MissingTracker | None = None
        self.throttle = KeyframeThrottle(keyframe_interval)
        self.packets = 0
        self.last_seen: float | None = None
        self.bitrate = 0
        self._window_start = 0.0
        self._window_bytes = 0

    def note(self, now: float, size: int) -> None:
        """One media packet of ``size`` payload bytes arrived at ``now``."""
        if self.last_seen is None or now - self._window_start >= 2 * RATE_WINDOW:
            self._window_start = now  # the first packet, or after a pause: a new window
            self._window_bytes = 0
            if self.last_seen is not None:
                self.bitrate = 0
        elif now - self._window_start >= RATE_WINDOW:
            self.bitrate = int(self._window_bytes * 8 / (now - self._window_start))
            self._window_start = now
            self._window_bytes = 0
        self._window_bytes += size
        self.last_seen = now

    def live(self, now: float, stale_after: float) -> bool:
        """Whether a packet of this layer arrived within ``stale_after`` seconds."""
        return self.last_seen is not None and now - self.last_seen < stale_after


class TrackUplink:
    """Receives one published track and feeds its downtracks (see the module doc)."""

    def __init__(self, kind: str, upstream: Upstream, feedback_ssrc: int,
                 stats: ForwardingStats, *, receiver: RTCRtpReceiver | None = None,
                 keyframe_interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind
        self._receiver = receiver
        self._upstream = upstream
        self._feedback_ssrc = feedback_ssrc
        self._stats = stats
        self._clock = clock
        self._keyframe_interval = keyframe_interval
        self.layers: list[Layer] = [Layer(0, keyframe_interval)]
        self.codecs: dict[int, Codec] = {}  # the publisher's media payload types
        self._rtx_apt: dict[int, int] = {}  # RTX payload type -> media payload type
        self._vp8 = False
        self._downtracks: dict[int, Downtrack] = {}
        self._snapshot: tuple[Downtrack, ...] = ()
        self.estimates: BitrateEstimates[int] = BitrateEstimates()
        # a simulcast track's cap while none of its subscribers needs its top layer
        # (adaptive quality sets it; None: the configured cap)
        self.cap_source: Callable[[], int | None] | None = None
        self.audio_level_id: int | None = None
        self.on_audio_level: AudioLevelListener | None = None
        self._listeners: dict[object, PacketListener] = {}
        self._listening: tuple[PacketListener, ...] = ()
        self.closed = False

    # -- configuration (from the negotiated SDP) ---------------------------------------

    def set_codecs(self, codecs: Mapping[int, Codec]) -> None:
        """The payload types the publisher may send, RTX included."""
        self.codecs = {pt: c for pt, c in codecs.items() if not c.is_rtx}
        self._vp8 = (self.mime or "").lower() == "video/vp8"  # downtracks rewrite its ids
        self._rtx_apt = {pt: c.apt for pt, c in codecs.items()
                         if c.is_rtx and c.apt is not None and c.apt in self.codecs}

    @property
    def clock(self) -> Callable[[], float]:
        """The clock that times keyframe requests, estimates and retransmissions."""
        return self._clock

    def is_rtx_type(self, payload_type: int) -> bool:
        """True for one of the publisher's retransmission payload types."""
        return payload_type in self._rtx_apt

    def set_ssrc(self, index: int, ssrc: int, rtx_ssrc: int | None = None) -> Layer:
        """Layer ``index`` arrives on ``ssrc`` (and its retransmissions on ``rtx_ssrc``)."""
        while len(self.layers) <= index:
            self.layers.append(Layer(len(self.layers), self._keyframe_interval))
        layer = self.layers[index]
        if layer.ssrc != ssrc:
            if layer.reception is not None:
                layer.reception.remove()
            layer.ssrc = ssrc
            layer.reception = (None if self._receiver is None else
                               ReceptionStats(self._receiver, ssrc, self.clock_rate))
            layer.missing = MissingTracker() if self.kind == "video" else None
        if rtx_ssrc is not None:
            layer.rtx_ssrc = rtx_ssrc
        return layer

    def set_rids(self, rids: tuple[str, ...]) -> None:
        """The track is simulcast: layer ``i`` is the stream of ``rids[i]`` (lowest first)."""
        for index, rid in enumerate(rids):
            while len(self.layers) <= index:
                self.layers.append(Layer(len(self.layers), self._keyframe_interval))
            self.layers[index].rid = rid

    def layer_of_rid(self, rid: str) -> Layer | None:
        """The layer whose RID is ``rid``."""
        return next((layer for layer in self.layers if layer.rid == rid), None)

    @property
    def simulcast(self) -> bool:
        """True when the track has more than one layer."""
        return len(self.layers) > 1

    def layer_bitrates(self) -> list[int]:
        """Each layer's measured bitrate (bits/s, payload), lowest layer first; 0 for a
        layer that sent nothing for two rate windows."""
        now = self._clock()
        return [layer.bitrate if layer.live(now, 2 * RATE_WINDOW) else 0
                for layer in self.layers]

    @property
    def mime(self) -> str | None:
        """The publisher's preferred (first) codec, ``video/VP8``..."""
        first = next(iter(self.codecs.values()), None)
        return None if first is None else first.mime(self.kind)

    @property
    def clock_rate(self) -> int:
        """The RTP clock rate of the track's codec."""
        first = next(iter(self.codecs.values()), None)
        return 90000 if first is None else first.clock_rate

    def keyframe_detector(self) -> Callable[[bytes], bool] | None:
        """How to see a keyframe in this track's payloads (None for audio)."""
        mime = self.mime
        return None if mime is None else detector(mime, with_parameters=True)

    # -- subscribers ---------------------------------------------------------------------

    @property
    def downtracks(self) -> tuple[Downtrack, ...]:
        """The downtracks fed now (a snapshot)."""
        return self._snapshot

    def attach(self, downtrack: Downtrack) -> None:
        """Start feeding ``downtrack``."""
        self._downtracks[id(downtrack)] = downtrack
        self._snapshot = tuple(self._downtracks.values())

    def detach(self, downtrack: Downtrack) -> None:
        """Stop feeding ``downtrack`` and forget its estimate."""
        if self._downtracks.pop(id(downtrack), None) is not None:
            self._snapshot = tuple(self._downtracks.values())
        self.estimates.remove(id(downtrack))

    def listen(self, key: object, listener: PacketListener) -> None:
        """Also give every packet to ``listener`` after the downtracks (a recorder)."""
        self._listeners[key] = listener
        self._listening = tuple(self._listeners.values())

    def unlisten(self, key: object) -> None:
        """Remove a listener added with :meth:`listen`."""
        if self._listeners.pop(key, None) is not None:
            self._listening = tuple(self._listeners.values())

    def note_estimate(self, downtrack: Downtrack, bitrate: int) -> None:
        """A subscriber's share of its REMB for this track."""
        self.estimates.update(id(downtrack), bitrate, self._clock())

    def remb_target(self, floor: int, cap: int, stale_after: float) -> int:
        """The bitrate to allow the publisher for this track now (a simulcast track: the
        cap, since each subscriber takes only the layer that fits it, or less while
        adaptive quality says nobody needs its top layer)."""
        if self.simulcast:
            lower = self.cap_source() if self.cap_source is not None else None
            return cap if lower is None else max(floor, min(cap, lower))
        return self.estimates.target(self._clock(), floor, cap, stale_after)

    # -- upstream ------------------------------------------------------------------------

    def request_keyframe(self, layer: int = 0) -> bool:
        """PLI upstream for ``layer``, unless one went within ``keyframe_interval``."""
        if self.closed or not 0 <= layer < len(self.layers):
            return False
        target = self.layers[layer]
        # a request that cannot be sent does not count against the throttle
        if (target.ssrc is None or not self._upstream.connected
                or not target.throttle.allow(self._clock())):
            return False
        self._stats.keyframe_requests += 1
        self._stats.changed()
        return self._upstream.send_rtcp(pli(self._feedback_ssrc, target.ssrc))

    @property
    def keyframes_combined(self) -> int:
        """Keyframe requests folded into one already sent (all layers)."""
        return sum(layer.throttle.combined for layer in self.layers)

    def close(self) -> None:
        """Stop: later packets are dropped and every downtrack and listener is let go."""
        self.closed = True
        self._downtracks.clear()
        self._snapshot = ()
        self._listeners.clear()
        self._listening = ()
        for layer in self.layers:
            if layer.reception is not None:
                layer.reception.remove()

    # -- the hot path --------------------------------------------------------------------

    def receive(self, data: bytes, first: int, second: int, seq: int, timestamp: int,
                layer: Layer, rtx: bool, arrival_ms: int) -> None:
        """One packet of ``layer`` (the demuxer read the fixed header)."""
        if self.closed:
            return
        started = time.perf_counter()
        start = 12 + ((first & 0x0F) << 2)
        ext_start = ext_end = profile = 0
        if first & 0x10:
            if len(data) < start + 4:
                return
            profile, words = _EXT_HEAD.unpack_from(data, start)
            ext_start = start + 4
            start = ext_end = ext_start + 4 * words
        end = len(data)
        if first & 0x20:
            end -= data[-1]
        if start > end:
            return
        payload_type = second & 0x7F
        now = self._clock()
        if rtx:
            media_type = self._rtx_apt.get(payload_type)
            if media_type is None or end - start < 2:
                return  # unknown, or a padding-only probe
            payload_type = media_type
            seq = (data[start] << 8) | data[start + 1]
            start += 2
            ssrc = layer.ssrc
            if ssrc is None:
                return
        else:
            if payload_type not in self.codecs:
                return
            ssrc = layer.ssrc if layer.ssrc is not None else 0
            if layer.reception is not None:
                layer.reception.add(seq, timestamp)
            layer.note(now, end - start)
        missing = layer.missing
        if missing is not None:
            lost = missing.add(seq)
            if lost:
                self._stats.lost_in += len(lost)
                self._upstream.send_rtcp(nack(self._feedback_ssrc, ssrc, lost))
        layer.packets += 1
        stats = self._stats
        stats.packets_in += 1
        stats.bytes_in += end - start
        stats.changed()
        level_id = self.audio_level_id
        if level_id is not None and self.on_audio_level is not None and ext_end:
            value = find_extension(data, profile, ext_start, ext_end, level_id)
            if value:
                level, voice = audio_level(value)
                try:
                    self.on_audio_level(level, voice)
                except Exception:
                    log.exception("audio level listener failed")
        packet = InboundPacket(ssrc, seq, timestamp, bool(second & 0x80), payload_type,
                               data[start:end], layer.index, arrival_ms, now, self._vp8)
        for downtrack in self._snapshot:
            downtrack.forward(packet)
        took = time.perf_counter() - started
        stats.fanout_seconds += took
        stats.fanout_max = max(stats.fanout_max, took)
        for listener in self._listening:  # off the forwarding's latency
            try:
                listener(packet)
            except Exception:
                log.exception("packet listener failed")
