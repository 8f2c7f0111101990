"""Which simulcast layer one subscriber gets, and when it switches (pure decisions).

A :class:`LayerSwitch` sits in a video :class:`~.downtrack.Downtrack` and sees
every packet of every layer of the track before anything else does. It
forwards one layer at a time (``current``). The layer it aims for is

    wanted = min(target, ceiling)

where ``ceiling`` is what the subscriber asked for (``set_quality``: low,
medium, high = 0, 1, 2) and ``target`` what adaptive quality picks (the top
layer until it says otherwise); of the layers that arrive now (a packet within
``stale_after`` seconds) it takes the highest at or below ``wanted``, else the
lowest that arrives. A layer the publisher's encoder stops sending (CPU or
bandwidth) so falls back to the next one down, and comes back when it resumes.

A switch happens only at the first packet of a keyframe of the new layer
(asked for with a PLI through ``request``, throttled per layer by the uplink);
until then the old layer goes on. The downtrack's rewriters keep sequence
numbers, timestamps and VP8 picture ids continuous across it.

A track with one layer is never switched: every packet passes.

``steady_until`` tells the downtrack's steady path how long packets of the
``current`` layer pass without a decision (:meth:`LayerSwitch.admit` would
only say yes): the end of the choice's :data:`RECHECK` while the choice is the
current layer, forever on a track with one layer, never while switching. Until
then a packet of another layer is refused without a decision too, unless it is
above the current layer and within ``wish`` (a layer coming back).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from rtchub.media.forwarding import Rewriter
from rtchub.media.sfu.uplink import InboundPacket, TrackUplink
from rtchub.media.sfu.vp8 import Vp8Rewriter

__all__ = ["STALE_AFTER", "LayerSwitch", "OneLayer"]

STALE_AFTER: Final = 1.0  # seconds without a packet after which a layer is not arriving
TOP: Final = 1 << 8  # "no limit": above any layer index
RECHECK: Final = 0.02  # seconds a choice stands on the hot path before it is made again


class LayerSwitch:
    """One subscriber's layer selection for one simulcast track (see the module doc).

    ``detect`` says whether a payload starts a keyframe (the track's codec),
    ``request`` asks the publisher for a keyframe of a layer (returns whether a
    request went), ``clock`` is the uplink's clock.
    """

    __slots__ = ("_checked", "_chosen", "_clock", "_detect", "_last_ts", "_request", "_uplink",
                 "ceiling", "current", "stale_after", "steady_until", "switches", "target", "wish")

    def __init__(self, uplink: TrackUplink, detect: Callable[[bytes], bool],
                 request: Callable[[int], bool], clock: Callable[[], float],
                 *, ceiling: int = TOP, stale_after: float = STALE_AFTER) -> None:
        self._uplink = uplink
        self._detect = detect
        self._request = request
        self._clock = clock
        self._last_ts: dict[int, int] = {}  # layer -> timestamp of its last packet seen
        self.target = TOP  # adaptive quality's choice: the top layer until it says
        self.ceiling = ceiling  # the subscriber's explicit choice (set_quality)
        self.stale_after = stale_after
        self.current: int | None = None  # the layer being forwarded
        self.switches = 0
        self._chosen = 0  # the last choice made on the hot path, and when
        self._checked: float | None = None
        self.steady_until = -math.inf  # see the module doc
        self.wish = min(self.target, ceiling)  # min(target, ceiling), not clamped

    # -- what adaptation and set_quality drive ----------------------------------------------

    def set_target(self, layer: int) -> None:
        """Aim for ``layer`` (adaptive quality), never above the ceiling."""
        if layer < 0:
            raise ValueError(f"a layer index is not negative, got {layer}")
        self.target = layer
        self.wish = min(layer, self.ceiling)
        self._checked = None
        self.steady_until = -math.inf
        self._ask()

    def set_ceiling(self, layer: int | None) -> None:
        """Never forward above ``layer`` (None: no limit): the subscriber's explicit choice."""
        if layer is not None and layer < 0:
            raise ValueError(f"a layer index is not negative, got {layer}")
        self.ceiling = TOP if layer is None else layer
        self.wish = min(self.target, self.ceiling)
        self._checked = None
        self.steady_until = -math.inf
        self._ask()

    @property
    def wanted(self) -> int:
        """min(target, ceiling), clamped to the layers the track has."""
        return min(self.target, self.ceiling, len(self._uplink.layers) - 1)

    @property
    def layer(self) -> int:
        """The layer this subscriber forwards, or is switching to, now."""
        return self.choose(self._clock())

    def choose(self, now: float) -> int:
        """The layer to forward at ``now``: the highest arriving at or below
        :attr:`wanted`, else the lowest arriving, else :attr:`wanted`."""
        layers = self._uplink.layers
        wanted = min(self.target, self.ceiling, len(layers) - 1)
        stale = self.stale_after
        for index in range(wanted, -1, -1):
            if layers[index].live(now, stale):
                return index
        for index in range(wanted + 1, len(layers)):
            if layers[index].live(now, stale):
                return index
        return wanted

    def _ask(self) -> None:
        # before the first packet went (a subscription starting) the downtrack's start
        # asks for its keyframe, and refused packets of the chosen layer ask again
        if self.current is None:
            return
        chosen = self.layer
        if chosen != self.current:
            self._request(chosen)

    # -- the hot path ----------------------------------------------------------------------

    def admit(self, packet: InboundPacket) -> bool:
        """Whether ``packet`` goes to the subscriber; switches at a keyframe of the layer
        chosen."""
        layers = self._uplink.layers
        index = packet.layer
        if len(layers) == 1:
            self.current = 0
            self.steady_until = math.inf
            return True
        now = packet.now  # the uplink's clock (this switch's) when the packet arrived
        checked = self._checked
        chosen = self._chosen
        if (checked is None or not 0 <= now - checked < RECHECK
                or chosen < index <= self.wish):
            # (a layer above the choice and within the wish arrives: it came back)
            chosen = self._chosen = self.choose(now)
            checked = self._checked = now
        current = self.current
        self.steady_until = checked + RECHECK if chosen == current else -math.inf
        if chosen != current:
            if index == chosen:
                previous = self._last_ts.get(index)
                self._last_ts[index] = packet.timestamp
                if previous != packet.timestamp and self._detect(packet.payload):
                    self.current = chosen
                    self.switches += 1
                    self.steady_until = checked + RECHECK
                    return True
                self._request(chosen)
                return False
            if index != current:
                self._last_ts[index] = packet.timestamp
            return index == current
        return index == current


class OneLayer:
    """A simulcast track seen as one continuous stream: for a listener that wants a single
    stream of the best layer (a recorder), not every layer's packets interleaved.

    It follows the highest layer that arrives (a :class:`LayerSwitch` without a
    ceiling), and :meth:`__call__` gives each admitted packet's sequence number,
    timestamp and payload continued across switches (and the VP8 picture id and
    TL0PICIDX), or None for a packet of another layer. A track with one layer
    passes through unchanged.
    """

    __slots__ = ("_rewriter", "_switch", "_vp8")

    def __init__(self, uplink: TrackUplink) -> None:
        detect = uplink.keyframe_detector()
        self._switch = None if detect is None or not uplink.simulcast else LayerSwitch(
            uplink, detect, uplink.request_keyframe, uplink.clock)
        self._rewriter = Rewriter(uplink.clock_rate, 0, 0)
        self._vp8 = Vp8Rewriter() if (uplink.mime or "").lower() == "video/vp8" else None

    def __call__(self, packet: InboundPacket) -> tuple[int, int, bytes] | None:
        """(sequence number, timestamp, payload) of ``packet`` in the one stream."""
        switch = self._switch
        if switch is None:
            return packet.seq, packet.timestamp, packet.payload
        if not switch.admit(packet):
            return None
        seq, timestamp = self._rewriter.translate_pair(packet.ssrc, packet.seq,
                                                       packet.timestamp, packet.arrival_ms)
        payload = packet.payload
        if self._vp8 is not None:
            payload = self._vp8.rewrite(packet.ssrc, payload)
        return seq, timestamp, payload
