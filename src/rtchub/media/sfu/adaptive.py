"""Adaptive quality: which simulcast layer each subscriber gets, and what publishers send.

The policy (:func:`decide`, pure: time comes in as ``now``) picks, for one subscriber
of one simulcast track, the highest layer that fits: within its explicit ceiling
(``set_quality``), whose bitrate fits in the subscriber's bandwidth estimate (REMB)
with some headroom, one step lower while its loss or round-trip time is bad. It steps
**down at once** and **up slowly**: one layer at a time, only after conditions allowed
the higher layer for ``up_after`` seconds without a break (hysteresis, so a subscriber
near a boundary does not flap and make the publisher send keyframes).

A receiver's REMB is a delay-based estimate that libwebrtc and aiortc cap near 1.5x
what the receiver gets, and raise by at most 8 % a second: it cannot show room for a
layer above the one forwarded, and after a step up it needs many seconds to follow
the new rate. The SFU sends no padding to probe ahead (aiortc has no pacer to send it
with), so the step up itself is the probe, as in an SFU without probing: a clean link
(loss at most ``loss_hold``, round trip below ``rtt_down``) whose estimate is well
above the current layer's rate, or unknown (no REMB, or none lately), steps up after
``up_after``; the new layer then stays while the estimate climbs (or holds) towards
it, and only loss, round trip or an estimate that falls below its rate take it back
down.
:func:`publisher_cap` says what a publisher may send when none of a track's
subscribers needs its top layer: the layers needed with a margin (the REMB sent
upstream), so the browser's encoder stops spending on a layer nobody gets.

:class:`AdaptationDriver` applies the policy every ``interval`` seconds on its clock
to every :class:`LayerControl` it was given, and keeps the publisher caps for the
peer's REMB to read (:meth:`AdaptationDriver.cap_for`).

What a downtrack must provide (:class:`LayerControl`) and what the driver is told
about a subscriber's link (:class:`SubscriberLink`) are this module's only contract
with simulcast forwarding; see docs/sfu-media.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Protocol

from rtchub.base.clock import Clock, Timer
from rtchub.media.sfu.downtrack import Downtrack

__all__ = ["AdaptationDriver", "AdaptivePolicy", "LayerChoice", "LayerControl",
           "SimulcastControl", "SubscriberLink", "decide", "publisher_cap"]

log = logging.getLogger("rtchub.media")


class LayerControl(Protocol):
    """One subscriber's downtrack of a simulcast track, as adaptation drives it.

    Layers are numbered from 0 (lowest). ``layer_bitrates`` is what each layer of the
    track measured lately in bits/s, one entry per layer the publisher announced (0:
    not arriving now). ``ceiling`` is the subscriber's explicit ``set_quality`` as a
    layer (None: none asked). ``set_target`` asks for a layer; the downtrack switches
    at that layer's next keyframe (and falls back by itself when it stops arriving).
    """

    def layer_bitrates(self) -> list[int]:
        """Bits/s measured per layer, lowest first."""
        ...

    @property
    def ceiling(self) -> int | None:
        """The highest layer the subscriber asked for, or None."""
        ...

    def set_target(self, layer: int) -> None:
        """Forward ``layer`` from its next keyframe on."""
        ...


class SimulcastControl:
    """A simulcast downtrack as :class:`LayerControl`: the layer bitrates its track's
    uplink measures, the ceiling ``set_quality`` put on its layer switch, and the switch's
    target (the switch changes layer at the new layer's keyframe, and falls back by
    itself while a layer is not arriving). An estimate older than ``stale_after``
    seconds (on the uplink's clock) is no estimate."""

    __slots__ = ("_downtrack", "_stale_after")

    def __init__(self, downtrack: Downtrack, stale_after: float = 5.0) -> None:
        if downtrack.layers is None or not downtrack.uplink.simulcast:
            raise ValueError("not the downtrack of a simulcast track")
        if not stale_after > 0:
            raise ValueError(f"stale_after must be positive, got {stale_after}")
        self._downtrack = downtrack
        self._stale_after = stale_after

    @property
    def estimate(self) -> int | None:
        """The subscriber's REMB share for this track (bits/s), if one came lately."""
        uplink = self._downtrack.uplink
        latest = uplink.estimates.latest(id(self._downtrack))
        if latest is None or uplink.clock() - latest[1] > self._stale_after:
            return None
        return latest[0]

    def layer_bitrates(self) -> list[int]:
        """Bits/s measured per layer, lowest first (0: not arriving now)."""
        return self._downtrack.uplink.layer_bitrates()

    @property
    def ceiling(self) -> int | None:
        """The subscriber's ``set_quality`` as a layer, or None."""
        layers = self._downtrack.layers
        return None if layers is None else layers.ceiling

    def set_target(self, layer: int) -> None:
        """Forward ``layer`` from its next keyframe on."""
        layers = self._downtrack.layers
        if layers is not None and layers.target != layer:
            layers.set_target(layer)


@dataclass(frozen=True, slots=True)
class SubscriberLink:
    """What is known of one subscriber's link now: its REMB estimate for this track
    (bits/s, None: none yet), loss in % and round-trip time in ms (None: unknown)."""

    estimate: int | None
    loss: float | None = None
    rtt: float | None = None


@dataclass(frozen=True, slots=True)
class AdaptivePolicy:
    """The policy's knobs.

    A layer fits when its bitrate is at most ``headroom`` times the estimate. Loss of
    ``loss_down`` % or more, or a round trip of ``rtt_down`` ms or more, takes the
    subscriber one layer below what fits; while loss is above ``loss_hold`` % it does
    not step up. A step up waits until a higher layer was allowed for ``up_after``
    seconds without a break; an estimate of at least ``unclamped`` times the current
    layer's bitrate allows the next layer up (a receiver's REMB stays within about 1.5x
    what it receives, so it cannot cover a higher layer before it gets it), and for
    ``up_after`` seconds after a step up only loss or round-trip time take the layer
    back down (the estimate needs that long to follow the new rate); the estimate takes
    a subscriber down only once it is below ``keep`` times the current layer's bitrate
    (the headroom is for going up; a receiver's estimator cuts to 0.85x what arrives
    on one sign of delay, so one cut alone does not) and has just fallen (an estimate
    climbing or holding on its way to the layer is no congestion: a congested
    receiver's estimate falls; a first estimate, with none before to compare, takes
    nobody down). A publisher capped
    because nobody needs its top layer is allowed ``cap_margin`` more than the layers
    needed.
    """

    headroom: float = 0.85
    loss_down: float = 10.0
    loss_hold: float = 2.0
    rtt_down: float = 500.0
    up_after: float = 8.0
    cap_margin: float = 0.25
    unclamped: float = 1.25
    keep: float = 0.7

    def __post_init__(self) -> None:
        if not 0 < self.headroom <= 1:
            raise ValueError(f"headroom must be within (0, 1], got {self.headroom}")
        if not 0 <= self.loss_hold <= self.loss_down:
            raise ValueError(f"expected 0 <= loss_hold <= loss_down, got {self.loss_hold}, "
                             f"{self.loss_down}")
        if not 0 < self.keep <= 1:
            raise ValueError(f"keep must be within (0, 1], got {self.keep}")
        if self.rtt_down <= 0 or self.up_after < 0 or self.cap_margin < 0:
            raise ValueError("rtt_down must be positive, up_after and cap_margin not negative")


@dataclass(frozen=True, slots=True)
class LayerChoice:
    """The layer a subscriber gets, since when a higher one was allowed (None: not), and
    when it was last raised to this layer (None: not lately). ``estimate`` is the one
    the decision saw (the next decision tells from it whether the estimate is rising);
    it is not part of the choice's equality."""

    layer: int
    better_since: float | None = None
    raised_at: float | None = None
    estimate: int | None = field(default=None, compare=False)


def _fitting(bitrates: list[int], top: int, estimate: int | None, headroom: float) -> int:
    """The highest layer up to ``top`` whose bitrate fits the estimate (0 when none)."""
    if estimate is None:
        return top
    budget = estimate * headroom
    for layer in range(top, -1, -1):
        if bitrates[layer] <= budget:
            return layer
    return 0


def decide(current: LayerChoice | None, bitrates: list[int], ceiling: int | None,
           link: SubscriberLink, now: float, policy: AdaptivePolicy) -> LayerChoice:
    """The layer one subscriber should get now (see the module doc).

    ``bitrates`` are the layers' known bitrates (bits/s, lowest first; a layer paused
    by a publisher cap keeps its last known rate). A first decision (``current`` None)
    starts at what fits at once.
    """
    return replace(_decide(current, bitrates, ceiling, link, now, policy),
                   estimate=link.estimate)


def _decide(current: LayerChoice | None, bitrates: list[int], ceiling: int | None,
            link: SubscriberLink, now: float, policy: AdaptivePolicy) -> LayerChoice:
    if not bitrates:
        return LayerChoice(0)
    top = len(bitrates) - 1 if ceiling is None else max(0, min(ceiling, len(bitrates) - 1))
    wanted = _fitting(bitrates, top, link.estimate, policy.headroom)
    troubled = ((link.loss is not None and link.loss >= policy.loss_down)
                or (link.rtt is not None and link.rtt >= policy.rtt_down))
    if current is None:
        return LayerChoice(max(0, wanted - 1) if troubled else wanted)
    layer = min(current.layer, top)
    if (wanted == layer < top and link.estimate is not None and bitrates[layer] > 0
            and link.estimate >= policy.unclamped * bitrates[layer]):
        # a receiver's REMB follows what it gets (libwebrtc and aiortc cap it near 1.5x
        # the received rate), so it never covers a layer well above the current one:
        # an estimate this far above the current layer says "not congested", try one up
        wanted = layer + 1
    raised = (current.raised_at if current.raised_at is not None and layer == current.layer
              and now - current.raised_at < policy.up_after else None)
    falling = (link.estimate is not None and current.estimate is not None
               and link.estimate < current.estimate)
    if wanted < layer and not troubled and (raised is not None or not falling or (
            link.estimate is not None and link.estimate >= policy.keep * bitrates[layer])):
        # the estimate is still catching up with the layer just raised to, is climbing
        # or holding on its way towards it (a receiver's estimator holds for a while
        # now and then), or covers what this layer sends (the headroom is for going
        # up): stay. A congested receiver's estimate falls (libwebrtc and aiortc cut it
        # to 0.85x what arrives): that, below ``keep`` times the layer's rate, takes it
        # down; one cut alone (a keyframe burst, a scheduling hiccup) does not.
        wanted = layer
    if troubled:
        wanted = min(wanted, max(0, layer - 1))
    if wanted < layer or layer != current.layer:
        return LayerChoice(min(wanted, layer))  # down: at once
    holding = link.loss is not None and link.loss > policy.loss_hold
    if wanted == layer or holding:
        return LayerChoice(layer, None, raised)
    since = current.better_since if current.better_since is not None else now
    if now - since >= policy.up_after:
        # up: one step
        return LayerChoice(layer + 1, now if layer + 1 < wanted else None, now)
    return LayerChoice(layer, since, raised)


def publisher_cap(targets: list[int], bitrates: list[int], margin: float) -> int | None:
    """What the publisher of a track may send (bits/s) when none of its subscribers'
    ``targets`` is the top layer: every layer up to the highest one needed, plus
    ``margin``; None when someone needs the top layer, nobody subscribes, or a layer
    needed was never measured (a cap without it would keep it from ever starting)."""
    if not targets or not bitrates or max(targets) >= len(bitrates) - 1:
        return None
    needed = bitrates[:max(targets) + 1]
    if not all(needed):
        return None
    return int(sum(needed) * (1 + margin))


@dataclass(slots=True)
class _Driven:
    control: LayerControl
    link: Callable[[], SubscriberLink]
    track: Hashable
    choice: LayerChoice | None = None
    known: list[int] | None = None  # the last nonzero bitrate of each layer


class AdaptationDriver:
    """Applies :func:`decide` to every control every ``interval`` seconds.

    :meth:`add` a subscriber's control with a function that reads its link now and
    the key of its track (the publisher caps are per track). One timer runs while
    anything is driven. ``on_change``, when set, hears every change of a subscriber's
    layer as ``(key, layer, now)``, ``now`` on the driver's clock (logs, tests).
    """

    def __init__(self, clock: Clock, policy: AdaptivePolicy | None = None,
                 interval: float = 1.0) -> None:
        if not interval > 0:
            raise ValueError(f"the adaptation interval must be positive, got {interval}")
        self.policy = policy or AdaptivePolicy()
        self.interval = interval
        self._clock = clock
        self._driven: dict[Hashable, _Driven] = {}
        self._caps: dict[Hashable, int] = {}
        self._timer: Timer | None = None
        self.closed = False
        self.on_change: Callable[[Hashable, int, float], None] | None = None

    def add(self, key: Hashable, control: LayerControl, link: Callable[[], SubscriberLink],
            track: Hashable) -> None:
        """Drive ``control`` (known as ``key``) from now on; the first decision is made
        at once."""
        driven = self._driven[key] = _Driven(control, link, track)
        self._apply(key, driven, self._clock())
        self._update_caps()
        if self._timer is None and not self.closed:
            self._timer = self._clock.call_later(self.interval, self._tick)

    def remove(self, key: Hashable) -> None:
        """Stop driving ``key`` (its track's cap is worked out again)."""
        if self._driven.pop(key, None) is not None:
            self._update_caps()
        if not self._driven and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def layer_of(self, key: Hashable) -> int | None:
        """The layer last chosen for ``key``."""
        driven = self._driven.get(key)
        return None if driven is None or driven.choice is None else driven.choice.layer

    def cap_for(self, track: Hashable) -> int | None:
        """What the publisher of ``track`` may send now (None: no cap from adaptation)."""
        return self._caps.get(track)

    def step(self) -> None:
        """Decide for everyone now (the timer does this every interval)."""
        now = self._clock()
        for key, driven in list(self._driven.items()):
            try:
                self._apply(key, driven, now)
            except Exception:
                log.exception("adapting a subscriber's layer failed")
        self._update_caps()

    def _apply(self, key: Hashable, driven: _Driven, now: float) -> None:
        measured = driven.control.layer_bitrates()
        known = driven.known or [0] * len(measured)
        known = [m if m > 0 else (known[i] if i < len(known) else 0)
                 for i, m in enumerate(measured)]
        driven.known = known
        before = driven.choice
        link = driven.link()
        if before is not None and before.layer < len(measured) and not measured[before.layer]:
            # the layer chosen is not arriving (the publisher paused or dropped it): the
            # subscriber gets a lower one by fallback and its estimate follows that one,
            # so it says nothing about this layer; loss and round trip still count
            link = SubscriberLink(None, link.loss, link.rtt)
        choice = decide(before, known, driven.control.ceiling, link, now, self.policy)
        driven.choice = choice
        if before is None or choice.layer != before.layer:
            driven.control.set_target(choice.layer)
            log.debug("adaptation: %r on layer %d (was %s)", key, choice.layer,
                      None if before is None else before.layer)
            if self.on_change is not None:
                self.on_change(key, choice.layer, now)

    def _update_caps(self) -> None:
        by_track: dict[Hashable, list[_Driven]] = {}
        for driven in self._driven.values():
            by_track.setdefault(driven.track, []).append(driven)
        caps: dict[Hashable, int] = {}
        for track, group in by_track.items():
            targets = [d.choice.layer for d in group if d.choice is not None]
            bitrates = max((d.known or [] for d in group), key=len)
            cap = publisher_cap(targets, bitrates, self.policy.cap_margin)
            if cap is not None:
                caps[track] = cap
        self._caps = caps

    def _tick(self) -> None:
        self._timer = None
        if self.closed or not self._driven:
            return
        self._timer = self._clock.call_later(self.interval, self._tick)
        self.step()

    def close(self) -> None:
        """Stop driving anything."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._driven.clear()
        self._caps.clear()
