"""The server's own WebRTC peers: an uplink per sender, a downtrack per receiver.

Both are aiortc ``RTCPeerConnection``s with no ICE servers, gathering on the
configured node addresses and UDP ports, and negotiating Opus only (so what
arrives can be forwarded as it is). Their media never goes through aiortc's
decoders or encoders: see :mod:`rtchub.media.fanout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription

from rtchub.errors import CodecNotSupported, InvalidSDP, ServerError
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.fanout import Downtrack, ForwardingStats, Uplink

__all__ = ["HeldTrack", "PeerFactory", "ReceiverPeer", "SenderPeer"]

log = logging.getLogger("rtchub.media")

OPUS = "audio/opus"


class HeldTrack(MediaStreamTrack):
    """A track that never yields a frame: the downtrack sends packets itself."""

    kind = "audio"

    def __init__(self, kind: str = "audio") -> None:
        super().__init__()
        self.kind = kind
        self._stopped: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        """Wait until stopped, then end (aiortc's sender loop exits quietly)."""
        await asyncio.shield(self._stopped)
        raise MediaStreamError

    def stop(self) -> None:
        """End the track."""
        if not self._stopped.done():
            self._stopped.set_result(None)
        super().stop()


def _opus_only() -> list[Any]:
    caps = RTCRtpSender.getCapabilities("audio")
    return [c for c in caps.codecs if c.mimeType.lower() == OPUS]


def _description(sdp: str, kind: str) -> RTCSessionDescription:
    if not sdp.strip():
        raise InvalidSDP(f"the {kind} has an empty sdp")
    try:
        SessionDescription.parse(sdp)
    except Exception as exc:
        raise InvalidSDP(f"the {kind} is not valid SDP: {type(exc).__name__}: "
                         f"{str(exc)[:120]}") from None
    return RTCSessionDescription(sdp=sdp, type=kind)


def rtx_payload_type(sdp: str, payload_type: int) -> int | None:
    """The RTX payload type that retransmits ``payload_type`` in ``sdp``, if negotiated."""
    for media in SessionDescription.parse(sdp).media:
        for codec in media.rtp.codecs:
            if (codec.mimeType.lower().endswith("/rtx") and codec.payloadType is not None
                    and codec.parameters.get("apt") == payload_type):
                return int(codec.payloadType)
    return None


def opus_payload_type(sdp: str) -> int:
    """The payload type negotiated for Opus in ``sdp``'s first audio section."""
    for media in SessionDescription.parse(sdp).media:
        if media.kind != "audio":
            continue
        for codec in media.rtp.codecs:
            if codec.mimeType.lower() == OPUS and codec.payloadType is not None:
                return int(codec.payloadType)
    raise CodecNotSupported("the description has no Opus audio: rtchub forwards Opus only")


class PeerFactory:
    """Builds server-side peer connections for one configuration."""

    def __init__(self, node_ips: Sequence[str], udp_ports: tuple[int, int] | None,
                 stats: ForwardingStats, consent_timeout: float = 30.0) -> None:
        self._node_ips = tuple(node_ips)
        self._udp_ports = udp_ports
        self._consent_timeout = consent_timeout  # RTC_CONSENT_TIMEOUT
        self.stats = stats
        self.open_peers = 0

    def _pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.open_peers += 1
        self.stats.changed()
        counted = True

        @pc.on("connectionstatechange")
        def closed() -> None:
            nonlocal counted
            if counted and pc.connectionState == "closed":
                counted = False
                self.open_peers -= 1
                self.stats.changed()

        return pc

    def _require_candidates(self, sdp: str) -> None:
        if "a=candidate:" not in sdp:
            ports = "any"
            if self._udp_ports is not None:
                ports = f"{self._udp_ports[0]}-{self._udp_ports[1]}"
            raise ServerError(f"Server error: no ICE candidate could be gathered "
                              f"(RTC_NODE_IP={','.join(self._node_ips) or 'auto'}, "
                              f"RTC_UDP_PORTS={ports})")

    async def accept_sender(self, offer_sdp: str) -> tuple[SenderPeer, str]:
        """Answer a sender's offer: its uplink and the answer SDP."""
        description = _description(offer_sdp, "offer")
        pc = self._pc()
        try:
            try:
                await pc.setRemoteDescription(description)
            except Exception as exc:
                raise InvalidSDP(f"the offer was refused: {type(exc).__name__}: "
                                 f"{str(exc)[:120]}") from None
            audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
            if not audio:
                raise CodecNotSupported("the offer has no audio section")
            transceiver = audio[0]
            transceiver.setCodecPreferences(_opus_only())
            uplink = Uplink(transceiver.receiver, self.stats)
            adapter.configure_ice(pc, self._node_ips, self._udp_ports,
                                  consent_timeout=self._consent_timeout)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            self._require_candidates(pc.localDescription.sdp)
            opus_payload_type(pc.localDescription.sdp)
        except BaseException:
            await pc.close()
            raise
        return SenderPeer(pc, uplink), pc.localDescription.sdp

    async def offer_receiver(self) -> tuple[ReceiverPeer, str]:
        """A receiver's peer and the offer SDP the server sends it."""
        pc = self._pc()
        try:
            track = HeldTrack()
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(_opus_only())
            adapter.configure_ice(pc, self._node_ips, self._udp_ports,
                                  consent_timeout=self._consent_timeout)
            offer = await pc.createOffer()
            await pc.setLocalDescription(offer)
            self._require_candidates(pc.localDescription.sdp)
        except BaseException:
            await pc.close()
            raise
        return ReceiverPeer(pc, transceiver.sender, track, self.stats), pc.localDescription.sdp


class SenderPeer:
    """A sender's peer connection on the server and the uplink of its stream."""

    def __init__(self, pc: RTCPeerConnection, uplink: Uplink) -> None:
        self.pc = pc
        self.uplink = uplink

    async def close(self) -> None:
        """Stop forwarding and close the peer connection."""
        self.uplink.close()
        await self.pc.close()


class ReceiverPeer:
    """A receiver's peer connection; once answered, it carries a downtrack."""

    def __init__(self, pc: RTCPeerConnection, sender: RTCRtpSender, track: HeldTrack,
                 stats: ForwardingStats) -> None:
        self.pc = pc
        self._sender = sender
        self._track = track
        self._stats = stats
        self.downtrack: Downtrack | None = None

    async def answer(self, answer_sdp: str) -> Downtrack:
        """Apply the receiver's answer; returns the downtrack to attach to an uplink."""
        if self.downtrack is not None:
            raise InvalidSDP("this receiver already answered; send start_receiving again")
        description = _description(answer_sdp, "answer")
        payload_type = opus_payload_type(answer_sdp)
        try:
            await self.pc.setRemoteDescription(description)
        except Exception as exc:
            raise InvalidSDP(f"the answer was refused: {type(exc).__name__}: "
                             f"{str(exc)[:120]}") from None
        self.downtrack = Downtrack(self._sender, payload_type, 48000, self._stats,
                                   rtx_payload_type(answer_sdp, payload_type))
        return self.downtrack

    async def close(self) -> None:
        """Detach from the stream and close the peer connection."""
        downtrack = self.downtrack
        if downtrack is not None:
            downtrack.closed = True
            if downtrack.uplink is not None:
                downtrack.uplink.detach(downtrack)
        self._track.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()
