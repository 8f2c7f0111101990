"""RTCP feedback the SFU sends upstream, built as bytes (pure, no I/O).

PLI (RFC 4585 6.3.1) to ask a publisher for a keyframe, generic NACK
(RFC 4585 6.2.1) for packets lost on the way in, REMB
(draft-alvestrand-rmcat-remb) to cap what a publisher sends.
"""

from __future__ import annotations

import struct
from collections.abc import Container, Iterable, Sequence
from typing import Final

__all__ = ["nack", "pli", "remb", "remb_share"]

_PSFB: Final = 206
_RTPFB: Final = 205
_HEADER: Final = struct.Struct("!BBHII")
_MAX_MANTISSA: Final = (1 << 18) - 1


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """A Picture Loss Indication for ``media_ssrc``."""
    return _HEADER.pack(0x81, _PSFB, 2, sender_ssrc, media_ssrc)


def nack(sender_ssrc: int, media_ssrc: int, lost: Iterable[int]) -> bytes:
    """A generic NACK for the ``lost`` sequence numbers of ``media_ssrc``."""
    pairs: list[tuple[int, int]] = []
    for seq in sorted(set(lost)):
        if pairs:
            pid, mask = pairs[-1]
            distance = (seq - pid) % 65536
            if 0 < distance <= 16:
                pairs[-1] = (pid, mask | 1 << (distance - 1))
                continue
        pairs.append((seq, 0))
    if not pairs:
        raise ValueError("a NACK names at least one sequence number")
    fci = b"".join(struct.pack("!HH", pid, mask) for pid, mask in pairs)
    return _HEADER.pack(0x81, _RTPFB, 2 + len(pairs), sender_ssrc, media_ssrc) + fci


def remb(sender_ssrc: int, bitrate: int, ssrcs: Sequence[int]) -> bytes:
    """A Receiver Estimated Maximum Bitrate of ``bitrate`` bits/s for ``ssrcs``."""
    if bitrate < 0:
        raise ValueError(f"a bitrate is not negative, got {bitrate}")
    if not 0 < len(ssrcs) < 256:
        raise ValueError(f"a REMB names 1-255 SSRCs, got {len(ssrcs)}")
    exponent, mantissa = 0, bitrate
    while mantissa > _MAX_MANTISSA:
        mantissa >>= 1
        exponent += 1
    fci = (b"REMB" + bytes([len(ssrcs), (exponent << 2) | (mantissa >> 16)])
           + (mantissa & 0xFFFF).to_bytes(2, "big")
           + b"".join(s.to_bytes(4, "big") for s in ssrcs))
    return _HEADER.pack(0x8F, _PSFB, 2 + len(fci) // 4, sender_ssrc, 0) + fci


def remb_share(bitrate: int, ssrcs: Sequence[int], repairs: Container[int | None] = ()) -> int:
    """One stream's share of a receiver's estimate.

    A browser's REMB is one estimate for everything it receives on the
    connection and names every SSRC it covers; aiortc sends one per video
    receiver. Either way, each named stream gets an equal share. Receivers
    name every SSRC that fed their estimator, retransmissions (RTX) included
    once one arrived, and never forget one: ``repairs`` are SSRCs that only
    repair a stream (its RTX) and do not count as a stream of their own.
    """
    return bitrate // max(1, sum(1 for ssrc in ssrcs if ssrc not in repairs))
