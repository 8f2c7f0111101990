"""Recording one track: its RTP packets in, timed whole frames out to its file.

A :class:`TrackRecorder` is fed every packet of a track as the SFU forwards
it (it is an :class:`~rtchub.media.fanout.Uplink` packet listener). It puts
them back in order (:mod:`.reorder`), assembles whole frames and drops what
loss broke (:mod:`.assembler`), places each frame on the file's time line
(:mod:`.timeline`) and hands it to a :class:`FrameSink` (the file, through the
recording's file thread). It does no I/O itself. A video track asks for a key
frame, at most once per ``keyframe_interval``, while it waits for one: at its
start, after a loss, after a pause, when the sender changes SSRC, and when the
disk falls behind and a frame had to be dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rtchub.media.recording.assembler import Frame, FrameAssembler
from rtchub.media.recording.codecs import RecordedCodec
from rtchub.media.recording.files import TIME_BASE, StreamInfo, TimedFrame
from rtchub.media.recording.limits import RecordingLimits
from rtchub.media.recording.payloads import MalformedPayload, opus_samples
from rtchub.media.recording.reorder import Reorderer
from rtchub.media.recording.timeline import Timeline

__all__ = ["FrameSink", "RtpLike", "TrackRecorder"]


class RtpLike(Protocol):
    """The fields of an RTP packet a recording reads (aiortc's ``RtpPacket`` has them)."""

    @property
    def ssrc(self) -> int:
        """The source."""
        ...

    @property
    def payload_type(self) -> int:
        """What the payload is (the negotiated media, or RTX, FEC...)."""
        ...

    @property
    def sequence_number(self) -> int:
        """16 bits, one more per packet."""
        ...

    @property
    def timestamp(self) -> int:
        """32 bits of the codec's clock, shared by a frame's packets."""
        ...

    @property
    def marker(self) -> int:
        """Set on the last packet of a video frame."""
        ...

    @property
    def payload(self) -> bytes:
        """The payload, padding removed."""
        ...


class FrameSink(Protocol):
    """Where a track's frames go; False from a method means "not taken"."""

    def open(self, info: StreamInfo) -> bool:
        """Start the file with this stream header."""
        ...

    def write(self, frame: TimedFrame) -> bool:
        """Write one frame (False: refused, the disk is behind)."""
        ...

    def close(self) -> None:
        """No more frames."""
        ...


class TrackRecorder:
    """One track's packets to its file's frames (bounded memory, no I/O)."""

    def __init__(self, codec: RecordedCodec, sink: FrameSink, limits: RecordingLimits,
                 clock: Callable[[], float], request_keyframe: Callable[[], None],
                 payload_type: int | None = None) -> None:
        self.codec = codec
        self._payload_type = payload_type
        self._sink = sink
        self._limits = limits
        self._clock = clock
        self._request = request_keyframe
        self._reorder: Reorderer[tuple[RtpLike, float]] = Reorderer(limits.reorder_packets,
                                                                    limits.reorder_delay)
        self._assembler = FrameAssembler(codec, limits.max_frame_bytes)
        self._timeline = Timeline(codec.clock_rate, TIME_BASE, limits.resync_after)
        self._ssrc: int | None = None
        self._fresh = True  # no packet seen since the start, a resume or a new SSRC
        self._last_request: float | None = None
        self.info: StreamInfo | None = None  # once the file is open
        # clock time of the file's media time 0: the least-delayed frame's arrival less its
        # media time (a sender that falls behind and catches up makes later frames the
        # better witnesses of when its media was live)
        self.started_at: float | None = None
        self.paused = False
        self.finished = False
        self.packets = 0
        self.frames = 0
        self.bytes = 0
        self.refused = 0  # frames the file thread's backlog had no room for
        self.ignored = 0  # packets of another payload type (RTX, FEC, comfort noise)
        self.keyframe_requests = 0

    @property
    def packets_lost(self) -> int:
        """Packets that never arrived (gaps given up on)."""
        return self._reorder.lost

    @property
    def frames_dropped(self) -> int:
        """Frames begun and not written: broken by loss, not a key frame, or refused."""
        return self._assembler.dropped + self.refused

    @property
    def waiting_for_keyframe(self) -> bool:
        """True while a video track drops packets until a key frame."""
        return self._assembler.waiting

    def feed(self, packet: RtpLike) -> None:
        """Take one forwarded packet (the Uplink listener)."""
        if self.paused or self.finished:
            return
        if self._payload_type is not None and packet.payload_type != self._payload_type:
            self.ignored += 1  # not the media itself (e.g. RTX has its own SSRC and type)
            return
        now = self._clock()
        self.packets += 1
        assembler = self._assembler
        before = assembler.discarded + assembler.dropped
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:  # a new source: what the old one left goes first
                self._release(self._reorder.flush())
                assembler.reset(counted=False)
                self._fresh = True
            self._ssrc = packet.ssrc
        if self._fresh and packet.payload:  # (a padding-only packet says nothing)
            self._fresh = False
            if assembler.waiting and not self._starts_keyframe(packet.payload):
                self._want_keyframe(now)  # joined mid-stream: ask now, not after the window
        self._release(self._reorder.push(packet.sequence_number, (packet, now), now))
        if assembler.waiting and assembler.discarded + assembler.dropped != before:
            self._want_keyframe(now)

    def _starts_keyframe(self, payload: bytes) -> bool:
        try:
            fragment = self.codec.parse(payload)
        except MalformedPayload:
            return False
        return fragment.starts_frame and fragment.keyframe

    def _release(self, ordered: list[tuple[int, tuple[RtpLike, float]]]) -> None:
        assembler = self._assembler
        for lost, (packet, arrived) in ordered:
            for frame in assembler.push(lost, packet.payload, packet.timestamp,
                                        bool(packet.marker)):
                self._write(frame, packet.ssrc, arrived)

    def _write(self, frame: Frame, ssrc: int, now: float) -> None:
        """Write ``frame``; ``now`` is when its last packet arrived."""
        if self.info is None and not self._open(frame, now):
            return
        timeline = self._timeline
        pts = timeline.place(ssrc, frame.timestamp, now)
        duration = 0
        if not self.codec.video:
            try:
                duration = timeline.ticks(opus_samples(frame.data))
            except MalformedPayload:
                duration = 0
        if self._sink.write(TimedFrame(frame.data, pts, duration, frame.keyframe)):
            self.frames += 1
            self.bytes += len(frame.data)
            origin = now - timeline.last_seconds
            if self.started_at is None or origin < self.started_at:
                self.started_at = origin
        else:
            self.refused += 1
            self._assembler.reset(counted=False)  # video: wait for a key frame again
            if self.codec.video:
                self._want_keyframe(now)

    def _open(self, frame: Frame, now: float) -> bool:
        codec = self.codec
        info = StreamInfo(codec)
        if codec.size is not None:
            size = codec.size(frame.data)
            if size is None:  # e.g. an IDR picture without its SPS: wait for another
                self._assembler.reset()
                self._want_keyframe(now)
                return False
            info = StreamInfo(codec, *size)
        self.info = info  # set first: the sink's manifest shows the file it opens
        self.started_at = now
        if not self._sink.open(info):
            self.info = self.started_at = None
            self._assembler.reset(counted=False)
            return False
        return True

    def _want_keyframe(self, now: float) -> None:
        if not self.codec.video:
            return
        last = self._last_request
        if last is not None and now - last < self._limits.keyframe_interval:
            return
        self._last_request = now
        self.keyframe_requests += 1
        self._request()

    def pause(self) -> None:
        """Drop packets until :meth:`resume`. What arrived before is written as far as it
        makes whole frames; a frame cut by the pause is dropped."""
        if self.paused or self.finished:
            return
        self._release(self._reorder.flush())
        self.paused = True
        self._assembler.reset(counted=False)

    def resume(self) -> None:
        """Take packets again; video waits for (and asks for) a key frame."""
        self.paused = False
        self._fresh = True

    def finish(self) -> None:
        """Write what the reorder window still holds and close the file (once)."""
        if self.finished:
            return
        if not self.paused:
            self._release(self._reorder.flush())
        self.finished = True
        self._assembler.reset(counted=False)
        if self.info is not None:
            self._sink.close()
