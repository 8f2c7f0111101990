"""Incoming RTP of one peer connection, routed to its tracks by SSRC.

The SSRCs a client announces in its offer (``a=ssrc``, with ``FID`` groups for
retransmissions) are bound up front. A packet from an SSRC not announced is
routed by its MID header extension (RFC 8843) to the track of that media
section and the SSRC is bound from then on, which is how clients that do not
announce SSRCs are followed. On a simulcast track the packet's RID extension
(RFC 8852) names its layer, and a retransmission's repaired-RID the layer it
repairs: each layer's SSRC and RTX SSRC are learned from their first packets
(browsers send MID and RID until the SSRC is acknowledged).
"""

from __future__ import annotations

from typing import Final

from rtchub.media.sfu.rtp import FIXED, find_extension
from rtchub.media.sfu.uplink import Layer, TrackUplink

__all__ = ["Demuxer"]

_EXT_HEAD_SIZE: Final = 4


class Demuxer:
    """Routes raw RTP to track uplinks (an ``RtpHandler`` for the peer's wire)."""

    __slots__ = ("_by_mid", "_routes", "mid_id", "rid_id", "rrid_id", "unroutable")

    def __init__(self) -> None:
        self._routes: dict[int, tuple[TrackUplink, Layer, bool]] = {}
        self._by_mid: dict[str, TrackUplink] = {}
        self.mid_id: int | None = None  # the MID extension id (one per BUNDLE group)
        self.rid_id: int | None = None  # the RID extension id
        self.rrid_id: int | None = None  # the repaired-RID extension id
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
        end = min(end, len(data))
        value = find_extension(data, profile, start + _EXT_HEAD_SIZE, end, mid_id)
        if not value:
            return None
        uplink = self._by_mid.get(value.decode("ascii", "replace"))
        if uplink is None:
            return None
        if uplink.simulcast:
            return self._learn_layer(uplink, data, profile, start + _EXT_HEAD_SIZE, end,
                                     payload_type, ssrc)
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

    def _learn_layer(self, uplink: TrackUplink, data: bytes, profile: int, start: int,
                     end: int, payload_type: int,
                     ssrc: int) -> tuple[TrackUplink, Layer, bool] | None:
        """Bind ``ssrc`` to the simulcast layer its RID (or repaired-RID) names."""
        rtx = uplink.is_rtx_type(payload_type)
        ext_id = self.rrid_id if rtx else self.rid_id
        if ext_id is None or (not rtx and payload_type not in uplink.codecs):
            return None
        value = find_extension(data, profile, start, end, ext_id)
        if not value:
            return None
        layer = uplink.layer_of_rid(value.decode("ascii", "replace"))
        if layer is None:
            return None
        if rtx:
            if layer.rtx_ssrc is not None and layer.rtx_ssrc in self._routes:
                return None  # a second RTX SSRC for one layer: not followed
            layer.rtx_ssrc = ssrc
            self._routes[ssrc] = (uplink, layer, True)
        else:
            if layer.ssrc is not None and layer.ssrc in self._routes:
                # the browser restarted the layer on a new SSRC: follow the new one
                del self._routes[layer.ssrc]
            self.bind(uplink, layer.index, ssrc)
        return self._routes[ssrc]
