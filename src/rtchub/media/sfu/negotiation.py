"""The negotiating half of a participant's peer connection with the SFU.

:class:`Negotiation` is what :class:`~.peer.SfuPeer` does with SDP and ICE; the peer
itself holds the state, the publications and subscriptions, data channels and
REMB. Negotiation (documented in docs/sfu-media.md):

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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from rtchub.errors import (
    ConnectionFailed,
    InvalidSDP,
    RtcHubError,
    ServerError,
    SignalingFailed,
    SignalingTimeout,
)
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu.config import SfuMediaConfig
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
from rtchub.media.sfu.tracks import PublishedTrack

__all__ = ["Negotiation", "OfferSink"]

log = logging.getLogger("rtchub.media")

OfferSink = Callable[[str], Awaitable[None]]


class Negotiation:
    """Offers and answers both ways, trickled candidates and what a completed negotiation
    publishes or subscribes (see the module doc); the state it works on is
    :class:`~.peer.SfuPeer`'s."""

    participant_id: str
    config: SfuMediaConfig
    pc: RTCPeerConnection
    closed: bool
    on_track_published: Callable[[PublishedTrack], None] | None
    _on_offer: OfferSink
    _lock: asyncio.Lock
    _numbering: Numbering
    _rejected: set[str]
    _simulcast: dict[str, tuple[str, tuple[int | None, int | None]]]
    _publications: Publications
    _subscribers: Subscribers
    _offer: str | None
    _answered: asyncio.Event
    _needed: bool
    _wake: asyncio.Event
    _was_connected: bool
    _failure: RtcHubError

    async def _fail(self, error: RtcHubError) -> None:
        """Fail the peer with ``error`` (it closes); the peer defines it."""
        raise NotImplementedError

    def _consent_expired(self) -> None:
        """ICE consent expired (RTC_CONSENT_TIMEOUT): fail the peer; the peer defines it."""
        raise NotImplementedError

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
                                  self.config.socket_buffer, self.config.consent_timeout,
                                  self._consent_expired)
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
                                  self.config.socket_buffer, self.config.consent_timeout,
                                  self._consent_expired)
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
