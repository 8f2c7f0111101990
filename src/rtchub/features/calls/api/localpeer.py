"""A participant's own peer connection in a mesh room: this process's aiortc peer.

In a mesh room media flows between the participants; a participant joined from Python
gets an aiortc ``RTCPeerConnection`` with the extension's STUN/TURN servers, behind seed
003's ``PeerConnection`` surface, to connect with one other participant. Its
descriptions travel however the application carries them (the signaling manager, a
room's relay).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from rtchub.errors import InvalidSDP, NotInRoom, SignalingFailed, TrackNotFound
from rtchub.features.calls.api.peer import (
    IceCandidate,
    SessionDescription,
    Track,
    TrackReceiver,
)
from rtchub.features.calls.service import CallService
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu import DataChannel

__all__ = ["LocalPeer", "gather_on"]

Handler = Callable[..., object]


def gather_on(pc: RTCPeerConnection, *addresses: str) -> None:
    """Make an aiortc peer gather host candidates on ``addresses`` (call before
    ``setLocalDescription``). Only needed where aioice finds nothing by itself: it skips
    loopback, so a machine (or test namespace) whose only interface is ``lo`` needs
    ``gather_on(pc, "127.0.0.1")``."""
    adapter.configure_ice(pc, addresses, None)


class LocalPeer:
    """An aiortc peer connection for a mesh-room participant (see the module doc).

    ``node_ips`` (the server's ``RTC_NODE_IP``) are the addresses it gathers on.
    ``close`` also leaves the room.
    """

    def __init__(self, calls: CallService, room: str, user: str,
                 ice_servers: Sequence[dict[str, Any]], node_ips: Sequence[str]) -> None:
        self._calls = calls
        self._room = room
        self._user = user
        self._node_ips = tuple(node_ips)
        servers = [RTCIceServer(**server) for server in ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self._closed = False

    @property
    def id(self) -> str:
        """The participant's id."""
        return self._user

    @property
    def user_id(self) -> str:
        """The participant."""
        return self._user

    @property
    def state(self) -> str:
        """The aiortc connection state."""
        return str(self.pc.connectionState)

    def _gather_on_node_ips(self) -> None:
        adapter.configure_ice(self.pc, self._node_ips, None)

    async def create_offer(self) -> SessionDescription:
        """An offer for what this peer sends and receives."""
        self._gather_on_node_ips()
        offer = await self.pc.createOffer()
        return SessionDescription(offer.type, offer.sdp)

    async def create_answer(self) -> SessionDescription:
        """The answer to the remote offer."""
        if self.pc.remoteDescription is None:
            raise SignalingFailed("no remote offer to answer: set_remote_description first")
        self._gather_on_node_ips()
        answer = await self.pc.createAnswer()
        return SessionDescription(answer.type, answer.sdp)

    async def set_local_description(self, description: SessionDescription) -> None:
        """Apply it (this gathers candidates; ``local_description`` then carries them)."""
        self._gather_on_node_ips()
        await self.pc.setLocalDescription(RTCSessionDescription(description.sdp,
                                                                description.type))

    @property
    def local_description(self) -> SessionDescription | None:
        """The applied local description, with its candidates."""
        desc = self.pc.localDescription
        return None if desc is None else SessionDescription(desc.type, desc.sdp)

    async def set_remote_description(self, description: SessionDescription) -> None:
        """Apply the other participant's description."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(description.sdp,
                                                                     description.type))
        except ValueError as exc:
            raise InvalidSDP(f"the description does not apply: {exc}") from None

    async def add_ice_candidate(self, candidate: IceCandidate | None) -> None:
        """The other participant's candidate (None: no more)."""
        if candidate is None or not candidate.candidate:
            await self.pc.addIceCandidate(None)
            return
        parsed = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
        parsed.sdpMid = candidate.sdp_mid
        parsed.sdpMLineIndex = candidate.sdp_mline_index
        await self.pc.addIceCandidate(parsed)

    async def add_track(self, track: MediaStreamTrack) -> None:
        """Send ``track`` (an aiortc track) from the next offer or answer on."""
        self.pc.addTrack(track)

    async def remove_track(self, track_id: str) -> None:
        """Stop sending the track ``track_id``."""
        for sender in self.pc.getSenders():
            if sender.track is not None and sender.track.id == track_id:
                sender.replaceTrack(None)
                return
        raise TrackNotFound(f"{self._user!r} sends no track {track_id[:80]!r}")

    def get_tracks(self) -> list[Track]:
        """What this peer sends and receives."""
        tracks = [Track(s.track.id, s.track.kind, self._user, "local", False, "send")
                  for s in self.pc.getSenders() if s.track is not None]
        tracks += [Track(r.track.id, r.track.kind, "remote", "remote", False, "recv")
                   for r in self.pc.getReceivers() if r.track is not None]
        return tracks

    async def get_stats(self) -> dict[str, Any]:
        """aiortc's statistics, by report type: packets and bytes sent and received."""
        report = await self.pc.getStats()
        totals: dict[str, Any] = {"peer_id": self._user, "connection_state": self.state}
        for stat in report.values():
            for key in ("packetsSent", "packetsReceived", "bytesSent", "bytesReceived"):
                value = getattr(stat, key, None)
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        return totals

    async def close(self) -> None:
        """Close the peer connection and leave the room."""
        if self._closed:
            return
        self._closed = True
        await self.pc.close()
        with contextlib.suppress(NotInRoom):
            await self._calls.leave(self._room, self._user)

    def on_ice_candidate(self, handler: Handler) -> None:
        """``handler(None)`` when gathering completes (aiortc gathers all at once)."""
        pc = self.pc

        def gathered() -> None:
            if pc.iceGatheringState == "complete":
                handler(None)

        pc.on("icegatheringstatechange", gathered)

    def on_track(self, handler: Handler) -> None:
        """``handler(track, receiver)`` for each remote track (an aiortc track)."""
        self.pc.on("track", lambda track: handler(track, TrackReceiver(track.id, self._user,
                                                                        track.kind)))

    def on_connection_state_change(self, handler: Handler) -> None:
        """``handler(state)`` on every connection state change."""
        pc = self.pc
        pc.on("connectionstatechange", lambda: handler(str(pc.connectionState)))

    def on_data_channel(self, handler: Handler) -> None:
        """``handler(channel)`` (a :class:`~rtchub.media.sfu.DataChannel`) for each channel
        the other side opens."""
        self.pc.on("datachannel", lambda channel: handler(DataChannel(channel)))

    def create_data_channel(self, label: str) -> DataChannel:
        """Open a data channel (before the offer)."""
        return DataChannel(self.pc.createDataChannel(label))
