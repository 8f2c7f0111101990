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
  :meth:`SfuPeer.accept_answer`. After the first negotiation it waits for the
  connection to be up before offering (aiortc clients ignore sections added while
  their DTLS handshake runs).
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
from collections.abc import Awaitable, Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import candidate_from_sdp

from rtchub.errors import (
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
from rtchub.media.sfu.config import SfuMediaConfig
from rtchub.media.sfu.datachannel import DataChannel
from rtchub.media.sfu.numbering import Numbering, harmonize_offer
from rtchub.media.sfu.publishing import Publications
from rtchub.media.sfu.sdp import (
    Section,
    cap_answer,
    parse_sections,
    reject_sections,
    restrict_offer,
)
from rtchub.media.sfu.simulcast import receive_simulcast, simulcast_offered
from rtchub.media.sfu.subscribing import Subscribers
from rtchub.media.sfu.tracks import PublishedTrack, Subscription

__all__ = ["OfferSink", "SfuPeer"]

log = logging.getLogger("rtchub.media")

OfferSink = Callable[[str], Awaitable[None]]


class SfuPeer:
    """One participant's peer connection with the SFU (see the module doc).

    Create it inside the running event loop; it owns two tasks (the
    negotiator and the REMB sender) until :meth:`close`. ``on_offer`` sends the
    server's offers to the client (the call feature's signaling). ``clock``
    drives keyframe throttling and estimate expiry, ``sleep`` the REMB period.
    """

    def __init__(self, participant_id: str, config: SfuMediaConfig, on_offer: OfferSink,
                 *, stats: ForwardingStats | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.participant_id = participant_id
        self.config = config
        self.stats = stats or ForwardingStats()
        self._on_offer = on_offer
        self._sleep = sleep
        self.pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._lock = asyncio.Lock()
        self._numbering = Numbering()
        self._rejected: set[str] = set()  # mids the client stopped: rejected for good
        # mid -> (the RIDs the client sends there, its RID / repaired-RID extension ids)
        self._simulcast: dict[str, tuple[str, tuple[int | None, int | None]]] = {}
        self._publications = Publications(participant_id, self.pc, config, self.stats, clock)
        self._subscribers = Subscribers(participant_id, self.pc, self.stats, config.cache_size,
                                        self._negotiation_needed, self._rejected)
        self._channels: list[DataChannel] = []
        self._offer: str | None = None  # the server's outstanding offer
        self._answered = asyncio.Event()
        self._needed = False
        self._wake = asyncio.Event()
        self.closed = False
        self._was_connected = False
        self._closing: asyncio.Task[object] | None = None  # the task running close()
        self._close_task: asyncio.Task[None] | None = None  # close() started by the peer
        self._failure: RtcHubError = ConnectionFailed(f"the peer of {participant_id!r} closed")
        self.on_track_published: Callable[[PublishedTrack], None] | None = None
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
    def on_track_unpublished(self) -> Callable[[PublishedTrack], None] | None:
        """Called when one of this participant's tracks ends."""
        return self._publications.on_unpublished

    @on_track_unpublished.setter
    def on_track_unpublished(self, listener: Callable[[PublishedTrack], None] | None) -> None:
        self._publications.on_unpublished = listener

    @property
    def published(self) -> dict[str, PublishedTrack]:
        """The tracks this participant publishes now, by mid."""
        return dict(self._publications.tracks)

    @property
    def subscriptions(self) -> list[Subscription]:
        """The tracks this participant receives (or is about to)."""
        return list(self._subscribers.all)

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
        wire = self._publications.wire
        return 0 if wire is None else wire.rx_packets

    @property
    def rtp_sent(self) -> int:
        """RTP packets the SFU sent on this connection (forwarded and retransmitted)."""
        wire = self._publications.wire
        return 0 if wire is None else wire.tx_packets

    @property
    def wire_bytes(self) -> tuple[int, int]:
        """SRTP bytes (received, sent) on the SFU's packet path (the quality monitor's
        bitrates)."""
        wire = self._publications.wire
        return (0, 0) if wire is None else (wire.rx_bytes, wire.tx_bytes)

    @property
    def rtp_unroutable(self) -> int:
        """RTP packets of no published track (unknown SSRC and no usable MID)."""
        return self._publications.demux.unroutable

    @property
    def data_channels(self) -> list[DataChannel]:
        """Every data channel opened on this peer, by either side."""
        return list(self._channels)

    def _state_changed(self) -> None:
        state = self.connection_state
        log.info("%s: connection %s", self, state)
        if state == "connected" and not self._was_connected:
            self._was_connected = True
            self._wake.set()  # an offer held back until now (see _make_offer) may go
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

        Raises :class:`InvalidSDP` for an unreadable offer (or one that changes a
        section's kind) and :class:`CodecNotSupported` when a live section offers no
        allowed codec; the connection is left as it was in both cases. An offer that
        passes these checks and that aiortc still refuses fails the peer
        (:class:`InvalidSDP`, ``on_failed``), which then closes: aiortc cannot roll
        back what it applied.
        """
        async with self._lock:
            self._check_open()
            if self.pc.signalingState == "have-local-offer":
                log.info("%s: client offer ignored (glare, the server's offer stands)", self)
                return None
            client = parse_sections(sdp)
            self._check_mids(client)
            restricted = restrict_offer(sdp, self.config)
            self._rejected.update(s.mid for s in client if s.rejected and s.mid is not None)
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(restricted, "offer"))
            except Exception as exc:
                await self._fail(InvalidSDP(f"the offer was refused: {type(exc).__name__}: "
                                            f"{str(exc)[:120]}"))
                raise self._failure from None
            self._numbering.learn(sdp)
            self._simulcast = simulcast_offered(sdp)  # an offer lists every section
            self._ensure_wire()
            adapter.configure_ice(self.pc, self.config.node_ips, self.config.udp_ports,
                                  self.config.socket_buffer)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            answer = receive_simulcast(cap_answer(
                reject_sections(self.pc.localDescription.sdp, self._rejected), self.config),
                self._simulcast)
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
            self._rejected.update(s.mid for s in client if s.rejected and s.mid is not None)
            self._numbering.settle(sdp)
            self._apply(client, client, answer_is_client=True)
            self._subscribers.answered()
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
        except Exception as exc:  # aiortc's parser raises whatever a bad line trips
            raise InvalidSDP(f"not an ICE candidate: {candidate[:80]!r} "
                             f"({type(exc).__name__})") from None
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
        return self._subscribers.subscribe(track)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop receiving; the section goes inactive at the next server offer."""
        subscription.end(None)

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
            try:
                offer = await self._make_offer()
            except RtcHubError as exc:
                await self._fail(exc)
                return
            except Exception as exc:
                log.exception("%s: the server's offer could not be made", self)
                await self._fail(ServerError(f"Server error: the offer could not be made: "
                                             f"{type(exc).__name__}: {exc}"))
                return
            if offer is None or self.closed:
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
            if self.pc.remoteDescription is not None and not self._was_connected:
                # negotiated but not connected yet: an aiortc client that answers a new
                # offer while its DTLS handshake runs never starts those receivers (its
                # connect step skips a transport that is still connecting), so a viewer
                # who published nothing got no media; the offer goes once connected
                return None
            self._needed = False
            self._subscribers.assign(self._wire_now)
            self._ensure_wire()
            adapter.configure_ice(self.pc, self.config.node_ips, self.config.udp_ports,
                                  self.config.socket_buffer)
            created = await self.pc.createOffer()
            offer = harmonize_offer(created.sdp, self._numbering)
            await self.pc.setLocalDescription(RTCSessionDescription(offer, "offer"))
            if self.closed:
                return None
            final = receive_simulcast(cap_answer(
                reject_sections(self.pc.localDescription.sdp, self._rejected), self.config),
                self._simulcast)
            self._require_candidates(final)
            self._numbering.learn(final)
            self._subscribers.offered()
            self._offer = final
            self._answered.clear()
            return final

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
            subscription = self._subscribers.by_mid(mine.mid)
            if subscription is not None:
                self._subscribers.settle(subscription, mine, agreed)
                continue
            server_receives = agreed.sends if answer_is_client else agreed.receives
            track = self._publications.apply_section(mine, agreed, server_receives)
            if track is not None:
                published.append(track)
        if self.on_track_published is not None:
            for track in published:
                self.on_track_published(track)

    # -- REMB upstream ---------------------------------------------------------------------------

    async def _remb_forever(self) -> None:
        while not self.closed:
            await self._sleep(self.config.remb_interval)
            self.send_remb()

    def send_remb(self) -> int | None:
        """Tell the client what it may send for its video tracks now (one REMB for all,
        the sum of each track's target); the bitrate sent, or None."""
        return self._publications.send_remb()

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
        publications = self._publications
        if publications.wire is not None:
            return
        transceivers = self.pc.getTransceivers()
        if transceivers:
            dtls = transceivers[0].receiver.transport
        elif self.pc.sctp is not None:
            dtls = self.pc.sctp.transport
        else:
            return
        publications.wire = adapter.SrtpWire(dtls, publications.demux, rtcp=True)

    def _wire_now(self) -> adapter.SrtpWire:
        self._ensure_wire()
        wire = self._publications.wire
        if wire is None:
            raise ServerError("Server error: the peer connection has no transport yet")
        return wire

    def _require_candidates(self, sdp: str) -> None:
        if "a=candidate:" not in sdp:
            if self._was_connected:  # aioice dropped its candidates: the connection ended
                raise ConnectionFailed(f"the ICE connection of {self.participant_id!r} "
                                       f"has closed")
            ports = "any" if self.config.udp_ports is None else "-".join(
                map(str, self.config.udp_ports))
            raise ServerError(f"Server error: no ICE candidate could be gathered (RTC_NODE_IP="
                              f"{','.join(self.config.node_ips) or 'auto'}, RTC_UDP_PORTS={ports})")

    async def _fail(self, error: RtcHubError) -> None:
        if self.closed:
            return
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
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("%s: a task failed while closing", self)
        self._publications.close()
        self._subscribers.close()
        self._answered.set()
        with contextlib.suppress(Exception):
            await self.pc.close()
