"""One participant's server-side peer connection: publish any tracks, subscribe to any.

An :class:`SfuPeer` owns ONE aiortc ``RTCPeerConnection`` (max-bundle, no ICE
servers, host candidates on the configured node addresses and ports) for one
participant, in both directions of media.

Negotiation (documented in docs/sfu-media.md):

- **The client offers to publish.** Its offer lists the tracks it sends
  (sendonly/sendrecv sections, known by their ``a=msid`` track id); it may
  also carry data channels. :meth:`SfuPeer.accept_offer` answers it with only
  the allowed codecs and the configured bitrate caps, and the tracks it names
  appear as :class:`~.tracks.PublishedTrack`\\ s (and disappear when a later
  offer stops sending on their section).
- **The server offers when subscriptions change.** :meth:`SfuPeer.subscribe`
  and :meth:`SfuPeer.unsubscribe` (and a server-opened data channel) only note
  the change; the peer's negotiator task then adds sendonly sections (reusing
  sections left inactive by ended subscriptions), offers through the
  ``on_offer`` callback and waits ``signaling_timeout`` seconds for
  :meth:`SfuPeer.accept_answer`.
- **Glare** is settled the way perfect negotiation does, with the server
  impolite (aiortc cannot roll back; a browser can): a client offer that
  arrives while the server's offer is outstanding is ignored
  (``accept_offer`` returns None). The client rolls back, answers the server's
  offer, and offers again.

Media never leaves the bytes: see :mod:`.uplink` and :mod:`.downtrack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import candidate_from_sdp

from rtchub.errors import (
    CodecNotSupported,
    ConnectionFailed,
    InvalidSDP,
    RtcHubError,
    ServerError,
    SignalingFailed,
    SignalingTimeout,
    TrackNotFound,
)
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.fanout import ForwardingStats
from rtchub.media.peers import HeldTrack
from rtchub.media.sfu.config import SfuMediaConfig
from rtchub.media.sfu.datachannel import DataChannel
from rtchub.media.sfu.demux import Demuxer
from rtchub.media.sfu.downtrack import Downtrack, payload_map
from rtchub.media.sfu.rtcp import remb
from rtchub.media.sfu.rtp import ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, MID_URI, ExtensionWriter
from rtchub.media.sfu.sdp import (
    Numbering,
    Section,
    cap_answer,
    harmonize_offer,
    parse_sections,
    restrict_offer,
)
from rtchub.media.sfu.tracks import PublishedTrack, Subscription, SubscriptionState
from rtchub.media.sfu.uplink import TrackUplink

__all__ = ["OfferSink", "SfuPeer"]

log = logging.getLogger("rtchub.media")

OfferSink = Callable[[str], Awaitable[None]]


def _capabilities(kind: str, mimes: Sequence[str]) -> list[RTCRtpCodecCapability]:
    """aiortc's codec capabilities for ``mimes`` (and RTX for video), in that order."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for mime in mimes for c in caps if c.mimeType.lower() == mime.lower()]
    if kind == "video":
        chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return chosen


class SfuPeer:
    """One participant's peer connection with the SFU (see the module doc).

    Create it inside the running event loop; it owns two tasks (the
    negotiator and the REMB sender) until :meth:`close`. ``on_offer`` sends the
    server's offers to the client (the call feature's signaling).
    """

    def __init__(self, participant_id: str, config: SfuMediaConfig, on_offer: OfferSink,
                 *, stats: ForwardingStats | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.participant_id = participant_id
        self.config = config
        self.stats = stats or ForwardingStats()
        self._on_offer = on_offer
        self._clock = clock
        self._sleep = sleep
        self.pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._lock = asyncio.Lock()
        self._numbering = Numbering()
        self._demux = Demuxer()
        self._wire: adapter.SrtpWire | None = None
        self.published: dict[str, PublishedTrack] = {}  # by mid
        self.subscriptions: list[Subscription] = []
        self._to_add: list[Subscription] = []
        self._by_mid: dict[str, Subscription] = {}
        self._transceiver_of: dict[int, RTCRtpTransceiver] = {}  # id(subscription) -> it
        self._feedback: dict[int, Downtrack] = {}  # id(sender) -> its downtrack
        self._last_on: dict[int, Downtrack] = {}  # id(sender) -> the last downtrack on it
        self._to_release: list[RTCRtpTransceiver] = []
        self._releasing: list[RTCRtpTransceiver] = []
        self._free: list[RTCRtpTransceiver] = []
        self._held: list[HeldTrack] = []
        self._channels: list[DataChannel] = []
        self._offer: str | None = None  # the server's outstanding offer
        self._answered = asyncio.Event()
        self._needed = False
        self._wake = asyncio.Event()
        self.closed = False
        self._closing: asyncio.Task[object] | None = None  # the task running close()
        self._close_task: asyncio.Task[None] | None = None  # close() started by the peer
        self.on_track_published: Callable[[PublishedTrack], None] | None = None
        self.on_track_unpublished: Callable[[PublishedTrack], None] | None = None
        self.on_data_channel: Callable[[DataChannel], None] | None = None
        self.on_connection_state_change: Callable[[str], None] | None = None
        self.on_failed: Callable[[RtcHubError], None] | None = None
        self.pc.on("datachannel", self._client_channel)
        self.pc.on("connectionstatechange", self._state_changed)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._negotiate_forever()),
                       loop.create_task(self._remb_forever())]

    def __repr__(self) -> str:
        return f"SfuPeer({self.participant_id!r}, {self.pc.connectionState})"

    # -- state ---------------------------------------------------------------------------

    @property
    def connection_state(self) -> str:
        """aiortc's connection state: new, connecting, connected, failed or closed."""
        return str(self.pc.connectionState)

    @property
    def signaling_state(self) -> str:
        """stable, have-local-offer, have-remote-offer or closed."""
        return str(self.pc.signalingState)

    @property
    def rtp_received(self) -> int:
        """RTP packets taken off the wire by the SFU's path (none reach aiortc)."""
        return 0 if self._wire is None else self._wire.rx_packets

    @property
    def rtp_sent(self) -> int:
        """RTP packets the SFU sent on this connection (forwarded and retransmitted)."""
        return 0 if self._wire is None else self._wire.tx_packets

    @property
    def rtp_unroutable(self) -> int:
        """RTP packets of no published track (unknown SSRC and no usable MID)."""
        return self._demux.unroutable

    @property
    def data_channels(self) -> list[DataChannel]:
        """Every data channel opened on this peer, by either side."""
        return list(self._channels)

    def _state_changed(self) -> None:
        state = self.connection_state
        if self.on_connection_state_change is not None:
            self.on_connection_state_change(state)
        if state in ("failed", "closed") and not self.closed and self._close_task is None:
            if state == "failed" and self.on_failed is not None:
                self.on_failed(ConnectionFailed(
                    f"the WebRTC connection of {self.participant_id!r} failed"))
            self._close_task = asyncio.get_running_loop().create_task(self.close())

    # -- signaling -------------------------------------------------------------------------

    async def accept_offer(self, sdp: str) -> str | None:
        """Answer the client's offer, or return None when it collides with the server's
        own outstanding offer (glare: the client rolls back and offers again later).

        Raises :class:`InvalidSDP` for an unreadable offer and
        :class:`CodecNotSupported` when a live section offers no allowed codec; the
        connection is left as it was in both cases.
        """
        async with self._lock:
            self._check_open()
            if self.pc.signalingState == "have-local-offer":
                log.info("%s: client offer ignored (glare, the server's offer stands)", self)
                return None
            client = parse_sections(sdp)
            self._check_mids(client)
            restricted = restrict_offer(sdp, self.config)
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(restricted, "offer"))
            except Exception as exc:
                await self._fail(InvalidSDP(f"the offer was refused: {type(exc).__name__}: "
                                            f"{str(exc)[:120]}"))
                raise self._failure from None
            self._numbering.learn(sdp)
            self._ensure_wire()
            adapter.configure_ice(self.pc, self.config.node_ips, self.config.udp_ports)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            answer = cap_answer(self.pc.localDescription.sdp, self.config)
            self._require_candidates(answer)
            self._numbering.settle(answer)
            self._apply(client, parse_sections(answer), answer_is_client=False)
        self._wake.set()  # changes noted meanwhile may need an offer now
        return answer

    async def accept_answer(self, sdp: str) -> None:
        """Apply the client's answer to the server's offer."""
        async with self._lock:
            self._check_open()
            offer = self._offer
            if offer is None or self.pc.signalingState != "have-local-offer":
                raise SignalingFailed("no offer from the server is waiting for an answer")
            client = parse_sections(sdp)
            ours = parse_sections(offer)
            if [(s.kind, s.mid) for s in client] != [(s.kind, s.mid) for s in ours]:
                raise InvalidSDP("the answer's media sections do not match the offer's")
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            except Exception as exc:
                await self._fail(InvalidSDP(f"the answer was refused: {type(exc).__name__}: "
                                            f"{str(exc)[:120]}"))
                raise self._failure from None
            self._offer = None
            self._numbering.settle(sdp)
            self._apply(client, client, answer_is_client=True)
            self._free += self._releasing
            self._releasing = []
            self._answered.set()
        self._wake.set()

    async def add_ice_candidate(self, candidate: str | None, sdp_mid: str | None = None,
                                sdp_mline_index: int | None = None) -> None:
        """A trickled candidate from the client (``candidate:...`` as browsers give it);
        None or "" ends the candidates. Every section is bundled on one transport."""
        self._check_open()
        if not candidate:
            await self.pc.addIceCandidate(None)
            return
        try:
            parsed = candidate_from_sdp(candidate.removeprefix("a=").removeprefix("candidate:"))
        except (ValueError, IndexError) as exc:
            raise InvalidSDP(f"not an ICE candidate: {candidate[:80]!r} ({exc})") from None
        primary = adapter.bundle_primary_mid(self.pc)
        parsed.sdpMid = primary if primary is not None else sdp_mid
        parsed.sdpMLineIndex = None if primary is not None else sdp_mline_index
        await self.pc.addIceCandidate(parsed)

    # -- subscribing -----------------------------------------------------------------------

    def subscribe(self, track: PublishedTrack) -> Subscription:
        """Start receiving ``track``: a new sendonly section at the next server offer.

        Returns the existing subscription when there is one; raises
        :class:`TrackNotFound` for an ended track.
        """
        self._check_open()
        if track.ended:
            raise TrackNotFound(f"track {track.track_id!r} of {track.publisher_id!r} ended")
        for existing in self.subscriptions:
            if existing.track is track:
                return existing
        subscription = Subscription(self.participant_id, track, self._release)
        self.subscriptions.append(subscription)
        track.subscriptions.append(subscription)
        self._to_add.append(subscription)
        self._negotiation_needed()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop receiving; the section goes inactive at the next server offer."""
        subscription.end(None)

    def _release(self, subscription: Subscription) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
        if subscription in self._to_add:
            self._to_add.remove(subscription)
            return
        transceiver = self._transceiver_of.pop(id(subscription), None)
        if subscription.mid is not None:
            self._by_mid.pop(subscription.mid, None)
        if transceiver is not None:
            self._feedback.pop(id(transceiver.sender), None)
            if not self.closed:
                self._to_release.append(transceiver)
                self._negotiation_needed()

    def _negotiation_needed(self) -> None:
        self._needed = True
        self._wake.set()

    # -- data channels ----------------------------------------------------------------------

    def create_data_channel(self, label: str, *, ordered: bool = True,
                            max_retransmits: int | None = None,
                            max_packet_lifetime: int | None = None) -> DataChannel:
        """Open a data channel from the server (renegotiates if SCTP is not set up yet)."""
        self._check_open()
        first = self.pc.sctp is None or self.pc.sctp.mid is None
        channel = DataChannel(self.pc.createDataChannel(
            label, ordered=ordered, maxRetransmits=max_retransmits,
            maxPacketLifeTime=max_packet_lifetime))
        self._channels.append(channel)
        if first:
            self._negotiation_needed()
        return channel

    def _client_channel(self, channel: object) -> None:
        wrapped = DataChannel(channel)  # type: ignore[arg-type]
        self._channels.append(wrapped)
        if self.on_data_channel is not None:
            self.on_data_channel(wrapped)

    # -- the server's offers -------------------------------------------------------------------

    async def _negotiate_forever(self) -> None:
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            offer = await self._make_offer()
            if offer is None:
                continue
            try:
                async with asyncio.timeout(self.config.signaling_timeout):
                    await self._on_offer(offer)
                    await self._answered.wait()
            except TimeoutError:
                await self._fail(SignalingTimeout(
                    f"{self.participant_id!r} did not answer the server's offer within "
                    f"{self.config.signaling_timeout:g} s"))
                return
            except Exception as exc:
                await self._fail(SignalingFailed(f"the server's offer could not be sent: "
                                                 f"{type(exc).__name__}: {exc}"))
                return

    async def _make_offer(self) -> str | None:
        async with self._lock:
            if self.closed or not self._needed or self.pc.signalingState != "stable":
                return None
            self._needed = False
            self._assign_transceivers()
            self._ensure_wire()
            adapter.configure_ice(self.pc, self.config.node_ips, self.config.udp_ports)
            created = await self.pc.createOffer()
            offer = harmonize_offer(created.sdp, self._numbering)
            await self.pc.setLocalDescription(RTCSessionDescription(offer, "offer"))
            final = cap_answer(self.pc.localDescription.sdp, self.config)
            self._require_candidates(final)
            self._numbering.learn(final)
            for subscription in self.subscriptions:
                transceiver = self._transceiver_of.get(id(subscription))
                if transceiver is not None and transceiver.mid is not None:
                    subscription.mid = str(transceiver.mid)
                    self._by_mid[subscription.mid] = subscription
            self._offer = final
            self._answered.clear()
            return final

    def _assign_transceivers(self) -> None:
        for transceiver in self._to_release:
            transceiver.direction = "inactive"
            self._releasing.append(transceiver)
        self._to_release = []
        for subscription in self._to_add:
            track = subscription.track
            free = next((t for t in self._free if t.kind == track.kind), None)
            if free is not None:
                self._free.remove(free)
                transceiver = free
            else:
                held = HeldTrack(track.kind)
                self._held.append(held)
                transceiver = self.pc.addTransceiver(held, direction="sendonly")
            transceiver.direction = "sendonly"
            transceiver.setCodecPreferences(_capabilities(track.kind, track.codecs))
            adapter.label_sender(transceiver.sender, track.stream_id or track.publisher_id,
                                 track.track_id)
            self._ensure_wire()
            assert self._wire is not None
            downtrack = Downtrack(track.uplink, self._wire, transceiver.sender, self.stats,
                                  self.config.cache_size,
                                  follows=self._last_on.get(id(transceiver.sender)))
            self._last_on[id(transceiver.sender)] = downtrack
            subscription.downtrack = downtrack
            self._transceiver_of[id(subscription)] = transceiver
            self._tap_feedback(transceiver.sender, downtrack)
        self._to_add = []

    def _tap_feedback(self, sender: RTCRtpSender, downtrack: Downtrack) -> None:
        key = id(sender)
        if key not in self._feedback:
            feedback = self._feedback

            def route(fb: adapter.RtcpFeedback) -> None:
                target = feedback.get(key)
                if target is not None:
                    target.on_feedback(fb)

            adapter.tap_sender_rtcp(sender, route)
        self._feedback[key] = downtrack

    # -- after a negotiation -------------------------------------------------------------------

    def _apply(self, client: list[Section], answer: list[Section], *,
               answer_is_client: bool) -> None:
        """Publish, unpublish and (de)activate what a completed negotiation says.

        ``client`` is the client's description (its SSRCs, msids, directions);
        ``answer`` the answer (the negotiated codecs and extension ids).
        """
        published: list[PublishedTrack] = []
        for mine, agreed in zip(client, answer, strict=True):
            if mine.kind not in ("audio", "video") or mine.mid is None:
                continue
            if MID_URI in agreed.extensions:
                self._demux.mid_id = agreed.extensions[MID_URI]
            subscription = self._by_mid.get(mine.mid)
            if subscription is not None:
                self._settle_subscription(subscription, mine, agreed)
                continue
            server_receives = (agreed.sends if answer_is_client else agreed.receives)
            track = self.published.get(mine.mid)
            track_id = mine.msid[1] if mine.msid and mine.msid[1] else f"mid-{mine.mid}"
            sending = mine.sends and server_receives
            if track is not None and (not sending or track.track_id != track_id):
                self._unpublish(track)
                track = None
            if not sending:
                continue
            if track is None:
                track = self._publish(mine, track_id)
                if track is None:
                    continue
                published.append(track)
            track.uplink.set_codecs({c.payload_type: c for c in agreed.codecs})
            track.uplink.audio_level_id = agreed.extensions.get(AUDIO_LEVEL_URI)
            self._bind_ssrcs(track, mine)
        if self.on_track_published is not None:
            for track in published:
                self.on_track_published(track)

    def _publish(self, section: Section, track_id: str) -> PublishedTrack | None:
        transceiver = next((t for t in self.pc.getTransceivers() if t.mid == section.mid),
                           None)
        if transceiver is None or self._wire is None or section.mid is None:
            return None
        uplink = TrackUplink(section.kind, self._wire, adapter.sender_ssrcs(transceiver.sender)[0],
                             self.stats, receiver=transceiver.receiver,
                             keyframe_interval=self.config.keyframe_interval, clock=self._clock)
        track = PublishedTrack(self.participant_id, track_id, section.kind, section.mid,
                               section.msid[0] if section.msid else None, uplink)
        self.published[section.mid] = track
        self._demux.add_track(section.mid, uplink)
        return track

    def _bind_ssrcs(self, track: PublishedTrack, section: Section) -> None:
        if section.rtx_ssrcs:
            main, rtx = next(iter(section.rtx_ssrcs.items()))
            self._demux.bind(track.uplink, 0, main, rtx)
        elif section.ssrcs:
            self._demux.bind(track.uplink, 0, section.ssrcs[0])

    def _unpublish(self, track: PublishedTrack) -> None:
        self.published.pop(track.mid, None)
        self._demux.remove_track(track.mid)
        track.end()
        if self.on_track_unpublished is not None:
            self.on_track_unpublished(track)

    def _settle_subscription(self, subscription: Subscription, mine: Section,
                             agreed: Section) -> None:
        if subscription.state is SubscriptionState.ENDED or subscription.downtrack is None:
            return
        if mine.rejected or agreed.rejected or not mine.receives:
            subscription.end(CodecNotSupported(
                f"{self.participant_id!r} refused track {subscription.track.track_id!r} "
                f"(section {mine.mid})"))
            return
        uplink = subscription.track.uplink
        publisher = {**uplink.codecs}
        mapping = payload_map(publisher, {c.payload_type: c for c in agreed.codecs})
        if not mapping:
            subscription.end(CodecNotSupported(
                f"{self.participant_id!r} shares no codec with track "
                f"{subscription.track.track_id!r} ({', '.join(subscription.track.codecs)})"))
            return
        extensions = ExtensionWriter(
            agreed.extensions.get(MID_URI), mine.mid,
            agreed.extensions.get(ABS_SEND_TIME_URI) if uplink.kind == "video" else None)
        subscription.downtrack.configure(mapping, extensions)
        subscription.activate()

    # -- REMB upstream ---------------------------------------------------------------------------

    async def _remb_forever(self) -> None:
        while not self.closed:
            await self._sleep(self.config.remb_interval)
            self.send_remb()

    def send_remb(self) -> int | None:
        """Tell the client what it may send for its video tracks (one REMB for all, the
        sum of each track's target); returns that bitrate, None when nothing was sent."""
        wire = self._wire
        video = [t for t in self.published.values()
                 if t.kind == "video" and t.uplink.layers[0].ssrc is not None]
        if wire is None or not video:
            return None
        config = self.config
        total = sum(t.uplink.remb_target(config.video_min_bitrate, config.video_max_bitrate,
                                         config.remb_stale_after) for t in video)
        ssrcs = [layer.ssrc for t in video for layer in t.uplink.layers
                 if layer.ssrc is not None]
        sender = next(iter(self.pc.getTransceivers()), None)
        if sender is None or not wire.send_rtcp(remb(adapter.sender_ssrcs(sender.sender)[0],
                                                     total, ssrcs)):
            return None
        return total

    # -- plumbing -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise ConnectionFailed(f"the peer of {self.participant_id!r} is closed")

    def _check_mids(self, sections: list[Section]) -> None:
        known = {t.mid: t.kind for t in self.pc.getTransceivers() if t.mid is not None}
        for section in sections:
            if section.kind in ("audio", "video") and section.mid is None:
                raise InvalidSDP(f"media section {section.index} has no a=mid (BUNDLE needs it)")
            if section.mid in known and known[section.mid] != section.kind:
                raise InvalidSDP(f"section {section.mid} changed kind from "
                                 f"{known[section.mid]} to {section.kind}")

    def _ensure_wire(self) -> None:
        if self._wire is not None:
            return
        transceivers = self.pc.getTransceivers()
        if transceivers:
            dtls = transceivers[0].receiver.transport
        elif self.pc.sctp is not None:
            dtls = self.pc.sctp.transport
        else:
            return
        self._wire = adapter.SrtpWire(dtls, self._demux)

    def _require_candidates(self, sdp: str) -> None:
        if "a=candidate:" not in sdp:
            ports = "any" if self.config.udp_ports is None else "-".join(
                map(str, self.config.udp_ports))
            raise ServerError(f"Server error: no ICE candidate could be gathered (RTC_NODE_IP="
                              f"{','.join(self.config.node_ips) or 'auto'}, RTC_UDP_PORTS={ports})")

    _failure: RtcHubError = ConnectionFailed("closed")

    async def _fail(self, error: RtcHubError) -> None:
        self._failure = error
        log.warning("%s failed: %s", self, error)
        if self.on_failed is not None:
            self.on_failed(error)
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self.close())

    async def close(self) -> None:
        """Unpublish, end every subscription, stop the tasks and close the connection.

        Idempotent; whatever closed the connection, this is the one path that
        releases what the peer holds (a second caller waits for the first).
        """
        if self._closing is not None:
            if self._closing is not asyncio.current_task():
                await asyncio.shield(self._closing)
            return
        self._closing = asyncio.current_task()
        self.closed = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for track in list(self.published.values()):
            self._unpublish(track)
        for subscription in list(self.subscriptions):
            subscription.end(None)
        for subscription in list(self._to_add):
            subscription.end(None)
        if self._wire is not None:
            self._wire.close()
        for held in self._held:
            held.stop()
        self._answered.set()
        with contextlib.suppress(Exception):
            await self.pc.close()
