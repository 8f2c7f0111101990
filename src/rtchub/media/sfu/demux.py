"""Incoming RTP of one peer connection, routed to its tracks by SSRC.

The SSRCs a client announces in its offer (``a=ssrc``, with ``FID`` groups for
retransmissions) are bound up front. A packet from an SSRC not announced is
routed by its MID header extension (RFC 8843) to the track of that media
section and the SSRC is bound from then on, which is how clients that do not
announce SSRCs (and simulcast layers, issue 11) are followed.
"""

from __future__ import annotations

from typing import Final

from rtchub.media.sfu.rtp import FIXED, find_extension
from rtchub.media.sfu.uplink import Layer, TrackUplink

__all__ = ["Demuxer"]

_EXT_HEAD_SIZE: Final = 4


class Demuxer:
    """Routes raw RTP to track uplinks (an ``RtpHandler`` for the peer's wire)."""

    __slots__ = ("_by_mid", "_routes", "mid_id", "unroutable")

    def __init__(self) -> None:
        self._routes: dict[int, tuple[TrackUplink, Layer, bool]] = {}
        self._by_mid: dict[str, TrackUplink] = {}
        self.mid_id: int | None = None  # the MID extension id (one per BUNDLE group)
        self.unroutable = 0

    def add_track(self, mid: str, uplink: TrackUplink) -> None:
        """Packets of media section ``mid`` belong to ``uplink``."""
        self._by_mid[mid] = uplink

    def remove_track(self, mid: str) -> None:
        """Forget section ``mid`` and every SSRC bound to its track."""
        uplink = self._by_mid.pop(mid, None)
        if uplink is not None:
            for ssrc in [s for s, route in self._routes.items() if route[0] is uplink]:
                del self._routes[ssrc]

    def bind(self, uplink: TrackUplink, layer: int, ssrc: int,
             rtx_ssrc: int | None = None) -> None:
        """Route ``ssrc`` (and ``rtx_ssrc``) to ``layer`` of ``uplink``."""
        bound = uplink.set_ssrc(layer, ssrc, rtx_ssrc)
        self._routes[ssrc] = (uplink, bound, False)
        if rtx_ssrc is not None:
            self._routes[rtx_ssrc] = (uplink, bound, True)

    def __call__(self, data: bytes, arrival_ms: int) -> None:
        """Route one unprotected RTP packet."""
        first, second, seq, timestamp, ssrc = FIXED.unpack_from(data)
        route = self._routes.get(ssrc)
        if route is None:
            route = self._learn(data, first, second & 0x7F, ssrc)
            if route is None:
                self.unroutable += 1
                return
        route[0].receive(data, first, second, seq, timestamp, route[1], route[2], arrival_ms)

    def _learn(self, data: bytes, first: int, payload_type: int,
               ssrc: int) -> tuple[TrackUplink, Layer, bool] | None:
        mid_id = self.mid_id
        if mid_id is None or not first & 0x10:
            return None
        start = 12 + ((first & 0x0F) << 2)
        if len(data) < start + _EXT_HEAD_SIZE:
            return None
        profile = int.from_bytes(data[start:start + 2], "big")
        end = start + _EXT_HEAD_SIZE + 4 * int.from_bytes(data[start + 2:start + 4], "big")
        value = find_extension(data, profile, start + _EXT_HEAD_SIZE, min(end, len(data)),
                               mid_id)
        if not value:
            return None
        uplink = self._by_mid.get(value.decode("ascii", "replace"))
        if uplink is None:
            return None
        layer = uplink.layers[0]
        if uplink.is_rtx_type(payload_type):
            if layer.ssrc is None or layer.rtx_ssrc is not None:
                return None
            self.bind(uplink, 0, layer.ssrc, ssrc)
        elif payload_type in uplink.codecs:
            if layer.ssrc is not None:
                return None  # a second SSRC on a single-layer track: not followed
            self.bind(uplink, 0, ssrc)
        else:
            return None
        return self._routes[ssrc]
