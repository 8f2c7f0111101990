"""A compound RTCP packet read into the values a forwarding server acts on (pure, no I/O).

Only what the SFU uses is read: reception report blocks of receiver and sender
reports (RFC 3550 6.4), the sender information of sender reports, generic NACK
(RFC 4585 6.2.1), PLI (RFC 4585 6.3.1), FIR (RFC 5104 4.3.1) and REMB
(draft-alvestrand-rmcat-remb). Everything else (SDES, BYE, XR, APP, transport-wide
feedback) is stepped over. A packet that does not hold together (wrong version, a
length past the end) raises :class:`RtcpError`, and the whole compound is dropped,
as aiortc drops it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Compound", "Nack", "ReceptionReport", "Remb", "RtcpError", "SenderReport",
           "read_compound"]

_SR: Final = 200
_RR: Final = 201
_RTPFB: Final = 205
_PSFB: Final = 206
_NACK: Final = 1
_PLI: Final = 1
_FIR: Final = 4
_APP: Final = 15
_HEAD: Final = struct.Struct("!BBH")
_BLOCK: Final = struct.Struct("!IB3sIIII")
_SENDER: Final = struct.Struct("!IQIII")
_TWO: Final = struct.Struct("!II")
_WORD: Final = struct.Struct("!I")
_PAIR: Final = struct.Struct("!HH")


class RtcpError(ValueError):
    """A compound RTCP packet that does not hold together."""


@dataclass(frozen=True, slots=True)
class ReceptionReport:
    """One report block: what ``reporter`` received of the stream ``ssrc``."""

    reporter: int  # the SSRC of the packet's sender (who reports)
    ssrc: int  # the stream reported on
    fraction_lost: int  # 0-255, since the reporter's previous report
    packets_lost: int  # cumulative (signed 24 bits)
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # interarrival jitter in RTP timestamp units
    lsr: int  # the middle 32 bits of the NTP time of the last SR received, 0 if none
    dlsr: int  # delay since that SR, in 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderReport:
    """The sender information of a sender report."""

    ssrc: int
    ntp_timestamp: int  # 64-bit NTP time when sent
    rtp_timestamp: int
    packets: int
    octets: int


@dataclass(frozen=True, slots=True)
class Nack:
    """A generic NACK: the sequence numbers of ``media_ssrc`` the sender did not get."""

    media_ssrc: int
    lost: list[int]


@dataclass(frozen=True, slots=True)
class Remb:
    """A receiver's estimate of the bitrate it can take for the streams ``ssrcs``."""

    bitrate: int
    ssrcs: list[int]


@dataclass(slots=True)
class Compound:
    """What one compound RTCP packet says, by kind, in the order it says it."""

    reports: list[ReceptionReport] = field(default_factory=list)
    senders: list[SenderReport] = field(default_factory=list)
    nacks: list[Nack] = field(default_factory=list)
    keyframes: list[int] = field(default_factory=list)  # SSRCs a PLI or FIR asks a keyframe of
    rembs: list[Remb] = field(default_factory=list)


def _blocks(data: bytes, start: int, count: int, end: int, reporter: int,
            out: list[ReceptionReport]) -> None:
    if start + 24 * count > end:
        raise RtcpError(f"{count} report blocks do not fit in {end - start} bytes")
    for i in range(count):
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, start + 24 * i)
        out.append(ReceptionReport(reporter, ssrc, fraction,
                                   int.from_bytes(lost, "big", signed=True), highest, jitter,
                                   lsr, dlsr))


def _nack(data: bytes, start: int, end: int) -> list[int]:
    lost: list[int] = []
    for pos in range(start, end - 3, 4):
        pid, mask = _PAIR.unpack_from(data, pos)
        lost.append(pid)
        for bit in range(16):
            if mask >> bit & 1:
                lost.append((pid + bit + 1) & 0xFFFF)
    return lost


def _remb(data: bytes, start: int, end: int) -> Remb | None:
    if end - start < 8 or data[start:start + 4] != b"REMB":
        return None  # an application message that is not REMB
    count = data[start + 4]
    if start + 8 + 4 * count > end:
        raise RtcpError(f"a REMB names {count} SSRCs in {end - start} bytes")
    exponent = data[start + 5] >> 2
    mantissa = (data[start + 5] & 0x03) << 16 | data[start + 6] << 8 | data[start + 7]
    ssrcs = list(struct.unpack_from(f"!{count}I", data, start + 8))
    return Remb(mantissa << exponent, ssrcs)


def read_compound(data: bytes) -> Compound:
    """Read every packet of a (plain, unprotected) compound RTCP packet."""
    out = Compound()
    pos = 0
    size = len(data)
    while pos < size:
        if size - pos < 4:
            raise RtcpError(f"{size - pos} bytes left after the last RTCP packet")
        first, kind, words = _HEAD.unpack_from(data, pos)
        if first >> 6 != 2:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > size:
            raise RtcpError(f"an RTCP packet of {4 + 4 * words} bytes in {size - pos}")
        body_end = end
        if first & 0x20:  # padding: its last byte says how much
            body_end -= data[end - 1]
            if body_end < pos + 4:
                raise RtcpError("RTCP padding longer than its packet")
        count = first & 0x1F
        if kind == _RR and body_end - pos >= 8:
            _blocks(data, pos + 8, count, body_end, _WORD.unpack_from(data, pos + 4)[0],
                    out.reports)
        elif kind == _SR and body_end - pos >= 28:
            ssrc, ntp, rtp_ts, packets, octets = _SENDER.unpack_from(data, pos + 4)
            out.senders.append(SenderReport(ssrc, ntp, rtp_ts, packets, octets))
            _blocks(data, pos + 28, count, body_end, ssrc, out.reports)
        elif kind in (_RTPFB, _PSFB) and body_end - pos >= 12:
            media = _TWO.unpack_from(data, pos + 4)[1]
            if kind == _RTPFB and count == _NACK:
                out.nacks.append(Nack(media, _nack(data, pos + 12, body_end)))
            elif kind == _PSFB and count == _PLI:
                out.keyframes.append(media)
            elif kind == _PSFB and count == _FIR:
                # the media source field is 0; each FCI entry names an SSRC (and a seq nr)
                out.keyframes += [_TWO.unpack_from(data, at)[0]
                                  for at in range(pos + 12, body_end - 7, 8)]
            elif kind == _PSFB and count == _APP:
                remb = _remb(data, pos + 12, body_end)
                if remb is not None:
                    out.rembs.append(remb)
        pos = end
    return out
