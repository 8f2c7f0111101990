"""The subscribing half of a participant's peer: sendonly sections that carry others' tracks.

A :class:`Subscription` waits in ``to_add`` until the next server offer; then
:meth:`Subscribers.assign` gives it a transceiver (a section left inactive by
an ended subscription of the same kind, else a new sendonly one), labels it
with the track's msid, limits it to the track's codecs and puts a
:class:`Downtrack` on its sender. When the answer comes back,
:meth:`Subscribers.settle` maps payload types and extension ids and starts
forwarding, or ends the subscription when the client refused it. An ended
subscription's section goes inactive at the next offer and is reused later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from rtchub.errors import CodecNotSupported
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.fanout import ForwardingStats
from rtchub.media.peers import HeldTrack
from rtchub.media.sfu.downtrack import Downtrack, payload_map
from rtchub.media.sfu.rtp import ABS_SEND_TIME_URI, MID_URI, ExtensionWriter
from rtchub.media.sfu.sdp import Section
from rtchub.media.sfu.tracks import PublishedTrack, Subscription, SubscriptionState

__all__ = ["Subscribers"]


def _capabilities(kind: str, mimes: Sequence[str]) -> list[RTCRtpCodecCapability]:
    """aiortc's codec capabilities for ``mimes`` (and RTX for video), in that order."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for mime in mimes for c in caps if c.mimeType.lower() == mime.lower()]
    if kind == "video":
        chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return chosen


class Subscribers:
    """One participant's subscriptions and the transceivers that carry them."""

    def __init__(self, participant_id: str, pc: RTCPeerConnection, stats: ForwardingStats,
                 cache_size: int, needed: Callable[[], None], rejected: set[str]) -> None:
        self._participant_id = participant_id
        self._pc = pc
        self._stats = stats
        self._cache_size = cache_size
        self._needed = needed  # a renegotiation is needed
        self._rejected = rejected  # mids the client stopped: never reused
        self.all: list[Subscription] = []
        self.to_add: list[Subscription] = []
        self._by_mid: dict[str, Subscription] = {}
        self._transceiver_of: dict[int, RTCRtpTransceiver] = {}  # id(subscription) -> it
        self._feedback: dict[int, Downtrack] = {}  # id(sender) -> its downtrack now
        self._last_on: dict[int, Downtrack] = {}  # id(sender) -> the last downtrack on it
        self._to_release: list[RTCRtpTransceiver] = []
        self._releasing: list[RTCRtpTransceiver] = []
        self._free: list[RTCRtpTransceiver] = []
        self._held: list[HeldTrack] = []
        self._tapped: set[int] = set()  # id(sender) of senders whose RTCP is tapped
        self.closed = False

    def subscribe(self, track: PublishedTrack) -> Subscription:
        """A pending subscription to ``track`` (the existing one, if any)."""
        for existing in self.all:
            if existing.track is track:
                return existing
        subscription = Subscription(self._participant_id, track, self._release)
        self.all.append(subscription)
        track.subscriptions.append(subscription)
        self.to_add.append(subscription)
        self._needed()
        return subscription

    def by_mid(self, mid: str | None) -> Subscription | None:
        """The subscription carried by section ``mid``."""
        return None if mid is None else self._by_mid.get(mid)

    def _release(self, subscription: Subscription) -> None:
        if subscription in self.all:
            self.all.remove(subscription)
        if subscription in self.to_add:
            self.to_add.remove(subscription)
            return
        transceiver = self._transceiver_of.pop(id(subscription), None)
        if subscription.mid is not None:
            self._by_mid.pop(subscription.mid, None)
        if transceiver is not None:
            self._feedback.pop(id(transceiver.sender), None)
            if not self.closed and transceiver.mid not in self._rejected:
                self._to_release.append(transceiver)
                self._needed()

    # -- building an offer ---------------------------------------------------------------

    def assign(self, outlet: Callable[[], adapter.SrtpWire]) -> None:
        """Before an offer: release ended sections, give new subscriptions a section
        (``outlet`` gives the wire, which exists once a transceiver does)."""
        for transceiver in self._to_release:
            transceiver.direction = "inactive"
            self._releasing.append(transceiver)
        self._to_release = []
        for subscription in self.to_add:
            track = subscription.track
            free = next((t for t in self._free if t.kind == track.kind), None)
            if free is not None:
                self._free.remove(free)
                transceiver = free
            else:
                held = HeldTrack(track.kind)
                self._held.append(held)
                transceiver = self._pc.addTransceiver(held, direction="sendonly")
            transceiver.direction = "sendonly"
            transceiver.setCodecPreferences(_capabilities(track.kind, track.codecs))
            adapter.label_sender(transceiver.sender, track.stream_id or track.publisher_id,
                                 track.track_id)
            sender = transceiver.sender
            wire = outlet()
            wire.carry_reports(sender)  # its sender reports go out without aiortc's hops
            downtrack = Downtrack(track.uplink, wire, sender, self._stats, self._cache_size,
                                  follows=self._last_on.get(id(sender)))
            self._last_on[id(sender)] = downtrack
            if downtrack.layers is not None:  # from the first packet on
                downtrack.layers.set_ceiling(subscription.layer_ceiling)
            subscription.downtrack = downtrack
            self._transceiver_of[id(subscription)] = transceiver
            self._tap_feedback(sender, downtrack)
        self.to_add = []

    def offered(self) -> None:
        """The offer is set locally: every assigned section has its mid now."""
        for subscription in self.all:
            transceiver = self._transceiver_of.get(id(subscription))
            if transceiver is not None and transceiver.mid is not None:
                subscription.mid = str(transceiver.mid)
                self._by_mid[subscription.mid] = subscription

    def answered(self) -> None:
        """The answer is in: sections released by this negotiation can be reused."""
        self._free += self._releasing
        self._releasing = []

    def _tap_feedback(self, sender: RTCRtpSender, downtrack: Downtrack) -> None:
        """Route the sender's RTCP feedback to whichever downtrack it carries now."""
        key = id(sender)
        self._feedback[key] = downtrack
        if key in self._tapped:
            return
        self._tapped.add(key)
        feedback = self._feedback

        def route(fb: adapter.RtcpFeedback) -> None:
            target = feedback.get(key)
            if target is not None:
                target.on_feedback(fb)

        adapter.tap_sender_rtcp(sender, route)

    # -- after a negotiation ---------------------------------------------------------------

    def settle(self, subscription: Subscription, client: Section, agreed: Section) -> None:
        """Start forwarding on the negotiated terms, or end a refused subscription."""
        if subscription.state is SubscriptionState.ENDED or subscription.downtrack is None:
            return
        track = subscription.track
        if client.rejected or agreed.rejected or not client.receives:
            subscription.end(CodecNotSupported(
                f"{self._participant_id!r} refused track {track.track_id!r} "
                f"(section {client.mid})"))
            return
        uplink = track.uplink
        mapping = payload_map(uplink.codecs, {c.payload_type: c for c in agreed.codecs})
        if not mapping:
            subscription.end(CodecNotSupported(
                f"{self._participant_id!r} shares no codec with track {track.track_id!r} "
                f"({', '.join(track.codecs)})"))
            return
        extensions = ExtensionWriter(
            agreed.extensions.get(MID_URI), client.mid,
            agreed.extensions.get(ABS_SEND_TIME_URI) if uplink.kind == "video" else None)
        subscription.downtrack.configure(mapping, extensions)
        subscription.activate()

    def close(self) -> None:
        """End every subscription and stop the placeholder tracks."""
        self.closed = True
        for subscription in [*self.all, *self.to_add]:
            subscription.end(None)
        for held in self._held:
            held.stop()
