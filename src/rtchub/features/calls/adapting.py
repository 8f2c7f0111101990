"""Adaptive quality in SFU call rooms: each simulcast subscription's layer, driven.

:class:`CallAdaptation` follows the subscriptions of SFU rooms (the media plane calls
:meth:`CallAdaptation.follow` on every state change of one). A subscription whose
downtrack is a :class:`~rtchub.media.sfu.adaptive.LayerControl` (simulcast forwarding
gives it one) is handed to the :class:`~rtchub.media.sfu.adaptive.AdaptationDriver`
while it is active, with its subscriber's link as the driver reads it: the downtrack's
share of the subscriber's REMB, and the loss its client last reported and the latest
round-trip time of its connection (from the quality monitor, which sees every receiver
report, so a step down does not wait for the next quality interval). An estimate older
than ``stale_after`` seconds counts as none. Any other downtrack (a track with one
layer) is left alone. ``CALL_ADAPTIVE_QUALITY=false`` builds none; the policy's
``up_after`` is ``CALL_ADAPTIVE_UP_AFTER``.
"""

from __future__ import annotations

from typing import Any

from rtchub.features.calls.quality import QualityMonitor
from rtchub.media.sfu import Subscription, SubscriptionState
from rtchub.media.sfu.adaptive import (
    AdaptationDriver,
    LayerControl,
    SimulcastControl,
    SubscriberLink,
)

__all__ = ["CallAdaptation", "is_layer_control"]


def is_layer_control(downtrack: Any) -> bool:
    """True when ``downtrack`` offers what :class:`LayerControl` asks for."""
    return (callable(getattr(downtrack, "set_target", None))
            and callable(getattr(downtrack, "layer_bitrates", None))
            and hasattr(downtrack, "ceiling"))


def _control_of(downtrack: Any, stale_after: float) -> LayerControl | None:
    """The downtrack as adaptation drives it: a simulcast track's downtrack through
    :class:`SimulcastControl`; one that is a LayerControl itself as is; else None."""
    if is_layer_control(downtrack):
        control: LayerControl = downtrack
        return control
    layers = getattr(downtrack, "layers", None)
    uplink = getattr(downtrack, "uplink", None)
    if layers is not None and uplink is not None and getattr(uplink, "simulcast", False):
        return SimulcastControl(downtrack, stale_after)
    return None


class CallAdaptation:
    """Drives the layers of SFU rooms' simulcast subscriptions (see the module doc)."""

    def __init__(self, driver: AdaptationDriver, quality: QualityMonitor | None = None,
                 stale_after: float = 5.0) -> None:
        self.driver = driver
        self.quality = quality
        self.stale_after = stale_after

    def follow(self, room: str, subscription: Subscription) -> bool:
        """Drive the subscription while it is active, forget it once it is not; True
        while it is driven."""
        key = (room, subscription.subscriber_id, subscription.track.track_id)
        downtrack = subscription.downtrack
        control = None if (subscription.state is not SubscriptionState.ACTIVE
                           or downtrack is None) else _control_of(downtrack, self.stale_after)
        if control is None:
            self.driver.remove(key)
            return False
        subscriber = subscription.subscriber_id

        def link() -> SubscriberLink:
            estimate = getattr(control, "estimate", None)
            loss, rtt = self._recent(room, subscriber)
            return SubscriberLink(estimate if isinstance(estimate, int) else None, loss, rtt)

        self.driver.add(key, control, link, (room, subscription.track.track_id))
        return True

    def cap_for(self, room: str, track_id: str) -> int | None:
        """What the publisher of ``track_id`` may send (bits/s) because none of its
        subscribers needs its top layer; None: no cap from adaptation."""
        return self.driver.cap_for((room, track_id))

    def _recent(self, room: str, participant: str) -> tuple[float | None, float | None]:
        monitor = self.quality
        if monitor is None or (room, participant) not in monitor.peers(room):
            return None, None
        return monitor.recent(participant, room)

    def close(self) -> None:
        """Stop driving anything."""
        self.driver.close()
