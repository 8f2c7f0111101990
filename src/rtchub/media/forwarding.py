"""Pure decisions of RTP forwarding: header rewriting, the retransmission cache, throttling.

Nothing here does I/O or knows aiortc. A :class:`Rewriter` maps each incoming
packet of whatever source currently feeds a receiver to the sequence numbers
and timestamps that receiver sees, so a receiver's stream stays continuous when
the source changes (stream switching, a sender's restart) and a forwarded
stream never collides with the SSRC or payload type the receiver negotiated.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

__all__ = ["KeyframeThrottle", "PacketCache", "Rewriter", "Translation", "rtp_packet",
           "rtx_packet"]

SEQ_MOD: Final = 1 << 16
TS_MOD: Final = 1 << 32
_HEADER = struct.Struct("!BBHII")


def rtp_packet(marker: bool, payload_type: int, seq: int, timestamp: int, ssrc: int,
               payload: bytes) -> bytes:
    """A minimal RTP packet (version 2, no CSRC, no extensions) around ``payload``."""
    header: bytes = _HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, seq, timestamp,
                                 ssrc)
    return header + payload


def rtx_packet(original: bytes, payload_type: int, seq: int, ssrc: int) -> bytes:
    """RFC 4588 retransmission of a packet built by :func:`rtp_packet`.

    The RTX packet keeps the original's marker and timestamp, carries its own
    ``payload_type``, ``seq`` and ``ssrc``, and its payload starts with the
    original sequence number.
    """
    if len(original) < _HEADER.size:
        raise ValueError(f"not an RTP packet: {len(original)} bytes")
    second: int
    original_seq: int
    timestamp: int
    _, second, original_seq, timestamp, _ = _HEADER.unpack_from(original)
    return bytes(_HEADER.pack(0x80, (second & 0x80) | payload_type, seq, timestamp, ssrc)
            + original_seq.to_bytes(2, "big") + original[_HEADER.size:])


@dataclass(frozen=True, slots=True)
class Translation:
    """The outgoing sequence number and timestamp of one forwarded packet."""

    seq: int
    timestamp: int


class Rewriter:
    """Per-receiver sequence/timestamp translation, continuous across source switches.

    ``clock_rate`` converts the wall-clock gap at a switch into a timestamp gap;
    ``first_seq``/``first_ts`` are the receiver's random starting points.
    """

    __slots__ = (
        "_clock_rate",
        "_highest_in",
        "_last_ms",
        "_last_seq",
        "_last_ts",
        "_seq_offset",
        "_source",
        "_ts_offset",
    )

    def __init__(self, clock_rate: int, first_seq: int, first_ts: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self._clock_rate = clock_rate
        self._source: int | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq = (first_seq - 1) % SEQ_MOD
        self._last_ts = first_ts % TS_MOD
        self._last_ms: int | None = None
        self._highest_in = 0

    @property
    def source(self) -> int | None:
        """The SSRC currently mapped, or None before the first packet."""
        return self._source

    def translate(self, ssrc: int, seq: int, timestamp: int, arrival_ms: int) -> Translation:
        """Map one incoming packet; a new ``ssrc`` re-anchors after the last packet sent."""
        out_seq, out_ts = self.translate_pair(ssrc, seq, timestamp, arrival_ms)
        return Translation(out_seq, out_ts)

    def translate_pair(self, ssrc: int, seq: int, timestamp: int,
                       arrival_ms: int) -> tuple[int, int]:
        """:meth:`translate` as a plain ``(seq, timestamp)`` pair (the SFU's hot path)."""
        if ssrc != self._source:
            gap_ms = 20 if self._last_ms is None else max(1, arrival_ms - self._last_ms)
            if self._source is None and self._last_ms is None:
                gap_ts = 0
            else:
                gap_ts = max(1, gap_ms * self._clock_rate // 1000)
            out_seq = (self._last_seq + 1) % SEQ_MOD
            out_ts = (self._last_ts + gap_ts) % TS_MOD
            self._source = ssrc
            self._seq_offset = (out_seq - seq) % SEQ_MOD
            self._ts_offset = (out_ts - timestamp) % TS_MOD
            self._highest_in = seq
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (timestamp + self._ts_offset) & 0xFFFFFFFF
        ahead = (seq - self._highest_in) & 0xFFFF
        if ahead < 0x8000:  # in order (or the anchor itself)
            self._highest_in = seq
            self._last_seq = out_seq
            self._last_ts = out_ts
            self._last_ms = arrival_ms
        return out_seq, out_ts


class PacketCache:
    """The last ``size`` packets sent to one receiver, by outgoing sequence number."""

    __slots__ = ("_packets", "_seqs", "_size")

    def __init__(self, size: int = 512) -> None:
        if size <= 0:
            raise ValueError(f"cache size must be positive, got {size}")
        self._size = size
        self._packets: list[bytes | None] = [None] * size
        self._seqs: list[int] = [-1] * size

    def put(self, seq: int, packet: bytes) -> None:
        """Remember ``packet`` sent as ``seq``."""
        slot = seq % self._size
        self._seqs[slot] = seq
        self._packets[slot] = packet

    def get(self, seq: int) -> bytes | None:
        """The packet sent as ``seq``, if still cached."""
        slot = seq % self._size
        return self._packets[slot] if self._seqs[slot] == seq else None


class KeyframeThrottle:
    """Combines keyframe requests: at most one upstream per ``interval`` seconds."""

    __slots__ = ("_interval", "_last", "combined")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last: float | None = None
        self.combined = 0

    def allow(self, now: float) -> bool:
        """True when a request at ``now`` should go upstream; else it is folded in."""
        if self._last is not None and now - self._last < self._interval:
            self.combined += 1
            return False
        self._last = now
        return True
