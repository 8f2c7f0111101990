"""What the SFU publishes and subscribes: a participant's tracks and who gets them.

A :class:`PublishedTrack` is one media section a participant sends on,
known by its ``track_id`` (the track id of the section's ``a=msid``, which is
the browser's ``MediaStreamTrack.id``; ``mid-<mid>`` when it has none), its
kind and mid. A :class:`Subscription` is one participant receiving one such
track on a transceiver of its own peer connection; its lifecycle is a checked
enum: ``pending`` (waiting for the renegotiation that adds it) -> ``active``
(forwarding) -> ``ended`` (unsubscribed, the track ended, the subscriber
refused its codecs or left).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rtchub.errors import RtcHubError
from rtchub.media.sfu.uplink import AudioLevelListener, TrackUplink

if TYPE_CHECKING:
    from rtchub.media.sfu.downtrack import Downtrack

__all__ = ["PublishedTrack", "Subscription", "SubscriptionState"]

log = logging.getLogger("rtchub.media")


class PublishedTrack:
    """A track one participant publishes through its server-side peer."""

    def __init__(self, publisher_id: str, track_id: str, kind: str, mid: str,
                 stream_id: str | None, uplink: TrackUplink) -> None:
        self.publisher_id = publisher_id
        self.track_id = track_id
        self.kind = kind
        self.mid = mid
        self.stream_id = stream_id
        self.uplink = uplink
        self.subscriptions: list[Subscription] = []
        self.ended = False
        self.on_ended: list[Callable[[PublishedTrack], None]] = []

    def __repr__(self) -> str:
        return (f"PublishedTrack({self.publisher_id!r}, {self.track_id!r}, {self.kind}, "
                f"mid={self.mid})")

    @property
    def codecs(self) -> list[str]:
        """The codecs the publisher may send (mime types, preferred first)."""
        return [c.mime(self.kind) for c in self.uplink.codecs.values()]

    @property
    def on_audio_level(self) -> AudioLevelListener | None:
        """Called with (level in -dBov, voice flag) for every packet carrying the
        ``ssrc-audio-level`` extension (audio tracks whose publisher negotiated it)."""
        return self.uplink.on_audio_level

    @on_audio_level.setter
    def on_audio_level(self, listener: AudioLevelListener | None) -> None:
        self.uplink.on_audio_level = listener

    def request_keyframe(self) -> bool:
        """Ask the publisher for a keyframe now, of every simulcast layer (throttled per
        layer); False if none was sent."""
        sent = [self.uplink.request_keyframe(i) for i in range(len(self.uplink.layers))]
        return any(sent)

    def end(self) -> None:
        """The publisher stopped sending it: end every subscription, then tell listeners."""
        if self.ended:
            return
        self.ended = True
        for subscription in list(self.subscriptions):
            subscription.end(None)
        self.uplink.close()
        for listener in self.on_ended:
            try:
                listener(self)
            except Exception:
                log.exception("track end listener failed")


class SubscriptionState(enum.Enum):
    """Where a subscription is in its life."""

    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"


_NEXT = {SubscriptionState.PENDING: (SubscriptionState.ACTIVE, SubscriptionState.ENDED),
         SubscriptionState.ACTIVE: (SubscriptionState.ENDED,),
         SubscriptionState.ENDED: ()}


class Subscription:
    """One subscriber receiving one published track (see the module doc)."""

    def __init__(self, subscriber_id: str, track: PublishedTrack,
                 release: Callable[[Subscription], None]) -> None:
        self.subscriber_id = subscriber_id
        self.track = track
        self.state = SubscriptionState.PENDING
        self.downtrack: Downtrack | None = None
        self.mid: str | None = None  # the subscriber's media section, once offered
        self.error: RtcHubError | None = None
        self.layer_ceiling: int | None = None  # the most simulcast layer forwarded (None: top)
        self.on_state_change: Callable[[Subscription], None] | None = None
        self._release = release

    def __repr__(self) -> str:
        return (f"Subscription({self.subscriber_id!r} <- {self.track.publisher_id!r}/"
                f"{self.track.track_id!r}, {self.state.value}, mid={self.mid})")

    def _move(self, state: SubscriptionState) -> None:
        if state not in _NEXT[self.state]:
            raise RuntimeError(f"subscription state: expected one of "
                               f"{[s.value for s in _NEXT[self.state]]}, got {state.value}")
        self.state = state
        if self.on_state_change is not None:
            try:
                self.on_state_change(self)
            except Exception:
                log.exception("subscription state listener failed")

    def activate(self) -> None:
        """The subscriber has the SDP: start forwarding."""
        if self.state is SubscriptionState.PENDING and self.downtrack is not None:
            self.downtrack.start()
            self._move(SubscriptionState.ACTIVE)

    def end(self, error: RtcHubError | None) -> None:
        """Stop forwarding and give the transceiver back; ``error`` says why, if it failed."""
        if self.state is SubscriptionState.ENDED:
            return
        self.error = error
        if self.downtrack is not None:
            self.downtrack.stop()
        if self in self.track.subscriptions:
            self.track.subscriptions.remove(self)
        self._release(self)
        self._move(SubscriptionState.ENDED)
