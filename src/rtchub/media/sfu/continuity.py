"""One subscriber's sequence numbers and timestamps, continuous across sources (pure).

The SFU's counterpart of :class:`rtchub.media.forwarding.Rewriter`, with the
same mapping: each packet of the source now fed is shifted by fixed offsets,
and a packet of a new source (a simulcast switch, a publisher's restart, a
reused transceiver carrying another track) re-anchors the offsets right after
the last packet sent, its timestamp moved on by the wall-clock gap. Its state is
public because the downtrack's steady path applies the offsets inline (a method
call per copy is a measurable share of the copy's cost) and notes the highest
packet sent as three plain fields; :meth:`translate` is the whole rule for every
other packet.
"""

from __future__ import annotations

from typing import Final

__all__ = ["Continuity"]

SEQ_MOD: Final = 1 << 16
TS_MOD: Final = 1 << 32


class Continuity:
    """Per-subscriber sequence number and timestamp translation (see the module doc).

    ``clock_rate`` converts the wall-clock gap at a switch into a timestamp gap;
    ``first_seq``/``first_ts`` are the subscriber's random starting points. While
    ``source`` is a packet's SSRC, its outgoing numbers are
    ``(seq + seq_offset) & 0xFFFF`` and ``(timestamp + ts_offset) & 0xFFFFFFFF``,
    and a packet in order (less than half the sequence space ahead of ``highest``)
    becomes the highest: ``highest``, ``highest_ts`` and ``highest_ms`` are its
    incoming sequence number, timestamp and arrival.
    """

    __slots__ = ("_clock_rate", "_first_seq", "_first_ts", "highest", "highest_ms", "highest_ts",
                 "seq_offset", "source", "ts_offset")

    def __init__(self, clock_rate: int, first_seq: int, first_ts: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self._clock_rate = clock_rate
        self._first_seq = first_seq % SEQ_MOD
        self._first_ts = first_ts % TS_MOD
        self.source: int | None = None
        self.seq_offset = 0
        self.ts_offset = 0
        self.highest = 0
        self.highest_ts = 0
        self.highest_ms: int | None = None  # None: nothing sent yet

    def last(self) -> tuple[int, int, int | None]:
        """The sequence number, timestamp and arrival (ms; None before the first packet)
        of the highest packet sent."""
        if self.highest_ms is None:
            return (self._first_seq - 1) % SEQ_MOD, self._first_ts, None
        return ((self.highest + self.seq_offset) & 0xFFFF,
                (self.highest_ts + self.ts_offset) & 0xFFFFFFFF, self.highest_ms)

    def translate(self, ssrc: int, seq: int, timestamp: int, arrival_ms: int) -> tuple[int, int]:
        """The outgoing ``(seq, timestamp)`` of one packet; a new ``ssrc`` re-anchors after
        the last packet sent."""
        if ssrc != self.source:
            last_seq, last_ts, last_ms = self.last()
            if last_ms is None:
                gap_ts = 0 if self.source is None else max(1, 20 * self._clock_rate // 1000)
            else:
                gap_ts = max(1, max(1, arrival_ms - last_ms) * self._clock_rate // 1000)
            self.source = ssrc
            self.seq_offset = (last_seq + 1 - seq) % SEQ_MOD
            self.ts_offset = (last_ts + gap_ts - timestamp) % TS_MOD
            self.highest = seq
            self.highest_ts = timestamp
            self.highest_ms = arrival_ms
            return (last_seq + 1) % SEQ_MOD, (last_ts + gap_ts) % TS_MOD
        out_seq = (seq + self.seq_offset) & 0xFFFF
        out_ts = (timestamp + self.ts_offset) & 0xFFFFFFFF
        if (seq - self.highest) & 0xFFFF < 0x8000:  # in order
            self.highest = seq
            self.highest_ts = timestamp
            self.highest_ms = arrival_ms
        return out_seq, out_ts
