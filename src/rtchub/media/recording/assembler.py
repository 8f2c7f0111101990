"""From in-order RTP payloads to whole frames, dropping what loss made undecodable.

Pure. The packets of one source arrive in sequence order (from a
:class:`~rtchub.media.recording.reorder.Reorderer`), each with the number of
packets lost just before it. A frame is the run of packets sharing an RTP
timestamp, from a packet that may start a frame to the one with the marker bit
(or VP9's end-of-frame bit); with no loss in between, a new timestamp also
closes the frame before it. A frame that lost a packet is dropped whole.

Video frames depend on the ones before them, so after a loss (and at the
start) the assembler waits for a key frame: it drops packets until one that
starts a key frame, and keeps the frame only if the whole of it is one a
decoder can start from (for H.264: with its SPS and PPS, which a sender that
changed its picture size has changed too).
:attr:`FrameAssembler.waiting` tells the caller to ask the sender for a key
frame. Audio frames (Opus) stand alone: a loss costs only the lost packets.
"""

from __future__ import annotations

from typing import NamedTuple

from rtchub.media.recording.codecs import RecordedCodec
from rtchub.media.recording.payloads import MalformedPayload

__all__ = ["Frame", "FrameAssembler"]


class Frame(NamedTuple):
    """One whole encoded frame and the RTP timestamp of its packets."""

    data: bytes
    timestamp: int
    keyframe: bool


class FrameAssembler:
    """Whole frames of one source; memory is bounded by ``max_bytes`` of one frame."""

    __slots__ = ("_codec", "_max_bytes", "_parts", "_size", "_timestamp", "_video",
                 "discarded", "dropped", "frames", "malformed", "waiting")

    def __init__(self, codec: RecordedCodec, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"a frame must be allowed at least one byte, got {max_bytes}")
        self._codec = codec
        self._video = codec.video
        self._max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._size = 0
        self._timestamp = 0
        self.waiting = self._video  # for a key frame
        self.frames = 0  # frames given out
        self.dropped = 0  # frames begun and given up (loss, bad data, too large, not key)
        self.discarded = 0  # packets dropped outside any frame (while waiting)
        self.malformed = 0  # packets that broke their payload format

    def push(self, lost: int, payload: bytes, timestamp: int, marker: bool) -> list[Frame]:
        """Take the next packet in sequence order; return the frames it completed."""
        out: list[Frame] = []
        if lost:
            self.reset()
        if not payload:  # padding only (bandwidth probing): it holds a sequence number, no data
            return out
        try:
            fragment = self._codec.parse(payload)
        except MalformedPayload:
            self.malformed += 1
            self.reset()
            return out
        parts = self._parts
        if parts and timestamp != self._timestamp:
            self._finish(out)  # no loss since its last packet: it was whole, marker or not
        if fragment.skip:  # an upper spatial layer: nothing of it is kept
            if parts and marker:
                self._finish(out)
            return out
        if not parts:
            if not fragment.starts_frame or (self.waiting and not fragment.keyframe):
                self.discarded += 1
                if self._video:
                    self.waiting = True
                return out
            self._timestamp = timestamp
        parts.append(fragment.data)
        self._size += len(fragment.data)
        if self._size > self._max_bytes:
            self.reset()
        elif marker or fragment.ends_frame:
            self._finish(out)
        return out

    def _finish(self, out: list[Frame]) -> None:
        data = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        keyframe = self._codec.is_keyframe(data)
        if self.waiting and not (keyframe and self._codec.can_start(data)):
            self.dropped += 1  # began like a key frame and is not one to start from
            return
        self.waiting = False
        self.frames += 1
        out.append(Frame(data, self._timestamp, keyframe))

    def reset(self, counted: bool = True) -> None:
        """Give up the frame in progress (``counted`` as dropped); video waits for a key
        frame again."""
        if self._parts:
            self.dropped += counted
            self._parts.clear()
            self._size = 0
        if self._video:
            self.waiting = True
