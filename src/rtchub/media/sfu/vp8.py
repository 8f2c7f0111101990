"""VP8 picture ids and TL0PICIDX kept continuous across simulcast switches (pure).

Each simulcast layer is its own VP8 stream with its own picture id (7 or 15
bits) and TL0PICIDX (8 bits) counters (RFC 7741 4.2). A subscriber moved from
one layer to another at a keyframe would see these counters jump, and a
decoder that tracks them (libwebrtc's does, to find missing frames) would
treat the jump as loss. :class:`Vp8Rewriter` gives each subscriber one
continuous count: at a switch the new layer's numbers are anchored right after
the last ones sent, and every later packet is shifted by the same offsets.
Without a switch the offsets are zero and the payload is passed on untouched.
"""

from __future__ import annotations

from typing import Final

__all__ = ["Vp8Descriptor", "Vp8Rewriter"]

_PID_MOD: Final = 1 << 15
_TL0_MOD: Final = 1 << 8


class Vp8Descriptor:
    """Where the picture id and TL0PICIDX sit in one VP8 payload (None: absent)."""

    __slots__ = ("picture_id", "pid_at", "pid_long", "tl0", "tl0_at")

    def __init__(self, payload: bytes) -> None:
        self.picture_id: int | None = None
        self.pid_at = 0
        self.pid_long = False
        self.tl0: int | None = None
        self.tl0_at = 0
        size = len(payload)
        if size < 2 or not payload[0] & 0x80:  # no X: no extension byte
            return
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture id
            if size <= offset:
                return
            self.pid_at = offset
            if payload[offset] & 0x80:  # M: 15 bits
                if size <= offset + 1:
                    return
                self.pid_long = True
                self.picture_id = ((payload[offset] & 0x7F) << 8) | payload[offset + 1]
                offset += 2
            else:
                self.picture_id = payload[offset] & 0x7F
                offset += 1
        if ext & 0x40:  # L: TL0PICIDX
            if size <= offset:
                return
            self.tl0_at = offset
            self.tl0 = payload[offset]


class Vp8Rewriter:
    """One subscriber's continuous VP8 picture id and TL0PICIDX (see the module doc).

    :meth:`rewrite` takes each forwarded packet's source SSRC and payload, in the
    order sent; a new SSRC is a switch. The state is public for the downtrack's
    steady path, which, while ``source`` is the packet's SSRC and neither offset
    is set, only notes the ids sent (:meth:`note`, inlined there).
    """

    __slots__ = ("last_pid", "last_tl0", "pid_offset", "source", "tl0_offset")

    def __init__(self) -> None:
        self.source: int | None = None
        self.pid_offset = 0
        self.tl0_offset = 0
        self.last_pid: int | None = None  # the highest picture id sent (15-bit space)
        self.last_tl0: int | None = None

    @property
    def shifted(self) -> bool:
        """True when payloads are rewritten (after a switch), not passed on as they are."""
        return bool(self.pid_offset or self.tl0_offset)

    def rewrite(self, ssrc: int, payload: bytes) -> bytes:
        """``payload`` with its picture id and TL0PICIDX continued for this subscriber."""
        return self.rewrite_described(ssrc, payload, Vp8Descriptor(payload))

    def note(self, pid: int | None, tl0: int | None) -> None:
        """Picture id ``pid`` and TL0PICIDX ``tl0`` were sent (already rewritten)."""
        if pid is not None and (self.last_pid is None
                                or 0 < (pid - self.last_pid) % _PID_MOD < _PID_MOD // 2):
            self.last_pid = pid
        if tl0 is not None and (self.last_tl0 is None
                                or 0 < (tl0 - self.last_tl0) % _TL0_MOD < _TL0_MOD // 2):
            self.last_tl0 = tl0

    def rewrite_described(self, ssrc: int, payload: bytes, desc: Vp8Descriptor) -> bytes:
        """:meth:`rewrite` with ``payload``'s descriptor already read (once per incoming
        packet, for all its subscribers)."""
        pid, tl0 = desc.picture_id, desc.tl0
        if ssrc != self.source:
            if self.source is not None:  # a switch: go on right after what was sent
                if pid is not None and self.last_pid is not None:
                    self.pid_offset = (self.last_pid + 1 - pid) % _PID_MOD
                if tl0 is not None and self.last_tl0 is not None:
                    self.tl0_offset = (self.last_tl0 + 1 - tl0) % _TL0_MOD
            self.source = ssrc
            self.last_pid = self.last_tl0 = None
        out_pid = None if pid is None else (pid + self.pid_offset) % _PID_MOD
        out_tl0 = None if tl0 is None else (tl0 + self.tl0_offset) % _TL0_MOD
        self.note(out_pid, out_tl0)
        if not self.pid_offset and not self.tl0_offset:
            return payload
        data = bytearray(payload)
        if out_pid is not None:
            at = desc.pid_at
            if desc.pid_long:
                data[at] = 0x80 | (out_pid >> 8)
                data[at + 1] = out_pid & 0xFF
            else:
                data[at] = out_pid & 0x7F
        if out_tl0 is not None:
            data[desc.tl0_at] = out_tl0
        return bytes(data)
