"""One participant's server-side peer connection: publish any tracks, subscribe to any.

An :class:`SfuPeer` owns ONE aiortc ``RTCPeerConnection`` (max-bundle, no ICE
servers, host candidates on the configured node addresses and ports) for one
participant, in both directions of media.

Negotiation (the client's offers, the server's own, glare) is
:class:`~.negotiation.Negotiation`, which :class:`SfuPeer` builds on.

Media never leaves the bytes: see :mod:`.uplink` and :mod:`.downtrack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from rtchub.errors import ConnectionFailed, RtcHubError, TrackNotFound
from rtchub.media.fanout import ForwardingStats
from rtchub.media.sfu.config import SfuMediaConfig
from rtchub.media.sfu.datachannel import DataChannel
from rtchub.media.sfu.negotiation import Negotiation, OfferSink
from rtchub.media.sfu.numbering import Numbering
from rtchub.media.sfu.publishing import Publications
from rtchub.media.sfu.subscribing import Subscribers
from rtchub.media.sfu.tracks import PublishedTrack, Subscription

__all__ = ["OfferSink", "SfuPeer"]

log = logging.getLogger("rtchub.media")

class SfuPeer(Negotiation):
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
    def rtcp_received(self) -> int:
        """SRTCP packets the SFU's path took off the wire and handled (none reach aiortc)."""
        wire = self._publications.wire
        return 0 if wire is None else wire.rx_rtcp

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

    def _consent_expired(self) -> None:
        self._failed(ConnectionFailed(
            f"the ICE connection of {self.participant_id!r} answered no consent check for "
            f"{self.config.consent_timeout:g} s (RTC_CONSENT_TIMEOUT)"))

    async def _fail(self, error: RtcHubError) -> None:
        self._failed(error)

    def _failed(self, error: RtcHubError) -> None:
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
