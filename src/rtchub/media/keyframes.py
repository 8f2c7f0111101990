"""Keyframe detection in RTP payloads, and the gate a video receiver waits behind.

Pure functions of bytes: nothing here does I/O or knows aiortc. A receiver that
joins a video stream mid-way (or whose source changes) cannot decode delta
frames that refer to pictures it never saw, so its :class:`KeyframeGate` drops
packets until one that starts a keyframe, as LiveKit and mediasoup do. Codecs
without a detector (audio, or a video codec we cannot parse) are never gated.

Payload formats: VP8 per RFC 7741, VP9 per RFC 9628 (descriptor only), H.264
per RFC 6184 (single NAL units, STAP-A, FU-A).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["KeyframeGate", "detector", "h264_starts_keyframe", "h264_starts_keyframe_with_sps",
           "vp8_starts_keyframe", "vp9_starts_keyframe"]

SEQ_MOD: Final = 1 << 16
# After the opening keyframe, packets this far behind it are late pre-keyframe deltas.
REORDER_WINDOW: Final = 1024
# SSRCs whose last timestamp a shut gate remembers (a switch involves two).
_MAX_WAITING: Final = 8

_VP8_START_CODE: Final = b"\x9d\x01\x2a"
_H264_IDR: Final = 5
_H264_SPS: Final = 7
_H264_STAP_A: Final = 24
_H264_FU_A: Final = 28


def vp8_starts_keyframe(payload: bytes) -> bool:
    """True when a VP8 RTP payload is the first packet of a key frame (RFC 7741).

    The payload descriptor must have S=1 and partition index 0; after its
    optional extensions (X: I with a 7- or 15-bit PictureID, L, T/K) comes the
    VP8 frame tag, whose inverse key-frame bit P is 0 for a key frame, followed
    by the key frame start code.
    """
    size = len(payload)
    if size < 1:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S (start of partition), PID must be 0
        return False
    offset = 1
    if first & 0x80:  # X: extension byte present
        if size < 2:
            return False
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: PictureID, 15 bits when its M bit is set
            if size <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX byte
            offset += 1
    # frame tag (3 bytes) then, for a key frame, the start code
    if size < offset + 6:
        return False
    return not payload[offset] & 0x01 and payload[offset + 3:offset + 6] == _VP8_START_CODE


def vp9_starts_keyframe(payload: bytes) -> bool:
    """True when a VP9 RTP payload starts a key frame (RFC 9628 descriptor).

    B (beginning of a frame) must be set and P (inter-picture predicted)
    clear; with layer indices present, only spatial layer 0 starts the picture.
    """
    if len(payload) < 1:
        return False
    first = payload[0]
    if first & 0x40 or not first & 0x08:  # P set, or B clear
        return False
    offset = 1
    if first & 0x80:  # I: PictureID
        if len(payload) <= offset:
            return False
        offset += 2 if payload[offset] & 0x80 else 1
    if first & 0x20:  # L: layer indices; SID is bits 3..1
        if len(payload) <= offset:
            return False
        return (payload[offset] >> 1) & 0x07 == 0
    return True


def _h264_key_nal(nal_type: int) -> bool:
    return nal_type in (_H264_IDR, _H264_SPS)


def h264_starts_keyframe(payload: bytes) -> bool:
    """True when an H.264 RTP payload carries the start of an IDR picture or an SPS.

    Handles single NAL unit packets, STAP-A aggregates (any aggregated NAL
    counts) and the first fragment of an FU-A (RFC 6184). An SPS counts because
    it precedes the IDR picture a receiver needs it for.
    """
    if len(payload) < 1:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type == _H264_STAP_A:
        offset = 1
        while offset + 2 < len(payload):
            length = int.from_bytes(payload[offset:offset + 2], "big")
            offset += 2
            if length == 0 or offset + length > len(payload):
                return False
            if _h264_key_nal(payload[offset] & 0x1F):
                return True
            offset += length
        return False
    if nal_type == _H264_FU_A:
        if len(payload) < 2:
            return False
        fu_header = payload[1]
        return bool(fu_header & 0x80) and _h264_key_nal(fu_header & 0x1F)
    return _h264_key_nal(nal_type)


def h264_starts_keyframe_with_sps(payload: bytes) -> bool:
    """True when an H.264 RTP payload starts with, or aggregates, a sequence parameter set.

    A decoder that never saw the stream needs the SPS and PPS before the IDR
    picture. Browsers and aiortc send them in-band ahead of every IDR, in a
    packet of their own (single NAL or STAP-A), so that packet is where a new
    receiver can start; an IDR fragment met first (the SPS went before the
    receiver joined) is not.
    """
    if len(payload) < 1:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type == _H264_STAP_A:
        offset = 1
        while offset + 2 < len(payload):
            length = int.from_bytes(payload[offset:offset + 2], "big")
            offset += 2
            if length == 0 or offset + length > len(payload):
                return False
            if payload[offset] & 0x1F == _H264_SPS:
                return True
            offset += length
        return False
    return nal_type == _H264_SPS


Detector = Callable[[bytes], bool]


def detector(mime_type: str, *, with_parameters: bool = False) -> Detector | None:
    """The keyframe detector for a negotiated codec (``video/VP8``…), None for no gating.

    ``with_parameters`` asks for H.264 keyframes that carry their SPS (for a
    receiver that joins a stream and has none yet).
    """
    if with_parameters and mime_type.lower() == "video/h264":
        return h264_starts_keyframe_with_sps
    return {
        "video/vp8": vp8_starts_keyframe,
        "video/vp9": vp9_starts_keyframe,
        "video/h264": h264_starts_keyframe,
    }.get(mime_type.lower())


class KeyframeGate:
    """Admits a source's packets only from the first packet that starts a keyframe.

    A gate starts closed. A packet of the open source passes; a packet of any
    other SSRC (a join, or a stream switch) passes only if it starts a
    keyframe and starts a frame (its timestamp differs from the previous packet
    seen of that SSRC: an H.264 keyframe sent as several slices has a keyframe
    start in each, and a receiver that joined after the first must wait for the
    next keyframe), which opens the gate for that SSRC. Late packets of the
    open source older than the keyframe that opened it are dropped too, so the
    receiver's first packet really is the keyframe and its sequence numbers
    have no gap. Pure and per receiver; the caller asks upstream for a keyframe
    whenever :meth:`admit` says no.
    """

    __slots__ = ("_detect", "_floor", "_last_ts", "_source")

    def __init__(self, detect: Detector) -> None:
        self._detect = detect
        self._source: int | None = None
        self._floor: int | None = None
        self._last_ts: dict[int, int] = {}  # SSRC -> timestamp of its last packet, while shut

    @classmethod
    def for_codec(cls, mime_type: str) -> KeyframeGate | None:
        """A gate for ``mime_type``, or None when that codec is never gated (audio)."""
        detect = detector(mime_type)
        return None if detect is None else cls(detect)

    @property
    def source(self) -> int | None:
        """The SSRC the gate is open for, None while waiting for the first keyframe."""
        return self._source

    @property
    def floor(self) -> int | None:
        """The sequence number of the keyframe that opened the gate while packets from
        before it are still refused (None once far past it, or while shut): a packet of
        the open source within ``REORDER_WINDOW`` ahead of it is admitted unchanged."""
        return self._floor

    def admit(self, ssrc: int, seq: int, timestamp: int, payload: bytes) -> bool:
        """Whether to forward this packet; a keyframe start of a new SSRC opens the gate."""
        if ssrc == self._source:
            floor = self._floor
            if floor is None:
                return True
            ahead = (seq - floor) % SEQ_MOD
            if ahead >= SEQ_MOD // 2:
                return False  # a delta from before the keyframe, arriving late
            if ahead >= REORDER_WINDOW:
                self._floor = None  # far past the switch: stop comparing (wrap-around)
            return True
        last_ts = self._last_ts
        previous = last_ts.get(ssrc)
        if len(last_ts) >= _MAX_WAITING and previous is None:
            last_ts.clear()
        last_ts[ssrc] = timestamp
        if previous == timestamp or not self._detect(payload):
            return False
        self._source = ssrc
        self._floor = seq
        last_ts.clear()
        return True

    def reset(self) -> None:
        """Close the gate: wait for a keyframe again (e.g. after a decoder reset)."""
        self._source = None
        self._floor = None
        self._last_ts.clear()
