"""Seed 003's ``Extension`` in Python: call rooms, the SFU router, signaling, the recorder.

Built from a running server's application (``CallsExtension(server.app, config)``), it
drives the same call service the browser app and forge's endpoint use, so a room made
from Python is the room they join. Built from a bare :class:`~rtchub.hub.Hub` it keeps
call rooms of its own (no socket reaches them; Python participants only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from rtchub.base.ids import validate_id
from rtchub.errors import NotInRoom, PeerNotFound, Unauthorized
from rtchub.features.calls.api.config import CallsConfig
from rtchub.features.calls.api.localpeer import LocalPeer
from rtchub.features.calls.api.peer import IceCandidate, SessionDescription
from rtchub.features.calls.api.room import CallRoom, Recorder, SfuRouter
from rtchub.features.calls.auth import AuthPolicy, TokenAuthorizer
from rtchub.features.calls.forge import ForgeDialect, ForgeRelay
from rtchub.features.calls.forge_routes import FORGE
from rtchub.features.calls.live import SfuMedia
from rtchub.features.calls.quality import QualityMonitor
from rtchub.features.calls.routes import CALL_MEDIA, CALLS
from rtchub.features.calls.rules import Grants
from rtchub.features.calls.service import CallService
from rtchub.hub import Hub
from rtchub.media.sfu import SfuMediaConfig, SfuPeer
from rtchub.net.http import HUB

__all__ = ["CallsExtension", "SignalingManager"]

OfferHandler = Callable[[str, str, SessionDescription], object]
CandidateHandler = Callable[[str, str, IceCandidate | None], object]


class _Closed:
    """Auth required and no secret: no token can be checked, so only guests get in."""

    def __init__(self, allow_guests: bool) -> None:
        self._guests = AuthPolicy(allow_guests=True) if allow_guests else None

    def authorize(self, room: str, token: str | None, requested: str | None) -> Grants:
        if token or self._guests is None or not requested:
            raise Unauthorized(f"room {room!r} needs a join token and this server has no "
                               f"token secret to check one with")
        guest = self._guests.guest(requested, room)
        return Grants(guest.identity, room, guest.publish, guest.subscribe, False, False)


class SignalingManager:
    """Seed 003's ``SignalingManager``: descriptions and candidates between Python and
    the clients on forge's endpoint, carried by the call feature.

    ``on_offer`` / ``on_answer`` / ``on_ice_candidate`` handlers get ``(room_id,
    peer_id, description or candidate)`` for everything a forge client sends (``peer_id``
    is the sender); ``send_offer`` / ``send_answer`` / ``send_ice_candidate`` deliver to
    the forge client ``peer_id`` of ``room_id`` as ``webrtc.*`` frames with ``"from"``
    (``sender``, default ``server``). A ``peer_id`` not connected there raises
    :class:`~rtchub.errors.PeerNotFound`.
    """

    def __init__(self, forge: ForgeDialect | None) -> None:
        self._forge = forge
        self._offer: list[OfferHandler] = []
        self._answer: list[OfferHandler] = []
        self._candidate: list[CandidateHandler] = []
        if forge is not None:
            forge.hooks.append(self._received)

    def on_offer(self, handler: OfferHandler) -> None:
        """Call ``handler(room_id, peer_id, offer)`` for each offer a client sends."""
        self._offer.append(handler)

    def on_answer(self, handler: OfferHandler) -> None:
        """Call ``handler(room_id, peer_id, answer)`` for each answer a client sends."""
        self._answer.append(handler)

    def on_ice_candidate(self, handler: CandidateHandler) -> None:
        """Call ``handler(room_id, peer_id, candidate)`` for each candidate a client
        sends (None: its end of candidates)."""
        self._candidate.append(handler)

    def _received(self, room: str, sender: str, kind: str,
                  payload: Mapping[str, Any] | None) -> None:
        if kind == "webrtc.ice_candidate":
            candidate = None if payload is None or not payload.get("candidate") else \
                IceCandidate(payload["candidate"], payload.get("sdpMid"),
                             payload.get("sdpMLineIndex"), payload.get("usernameFragment"))
            for on_candidate in list(self._candidate):
                on_candidate(room, sender, candidate)
            return
        assert payload is not None
        desc = SessionDescription(payload.get("type") or kind.removeprefix("webrtc."),
                                  payload["sdp"])
        for handler in list(self._offer if desc.type == "offer" else self._answer):
            handler(room, sender, desc)

    def _send(self, room_id: str, peer_id: str, frame: dict[str, Any], sender: str) -> None:
        target = None if self._forge is None else self._forge.mesh.find(room_id, peer_id)
        if target is None:
            raise PeerNotFound(f"{peer_id[:80]!r} is not connected to room {room_id!r} on "
                               f"forge's endpoint here")
        target.deliver(ForgeRelay(room_id, peer_id, sender, frame))

    def send_offer(self, room_id: str, peer_id: str, offer: SessionDescription,
                   sender: str = "server") -> None:
        """Deliver ``offer`` to ``peer_id`` (``webrtc.offer``)."""
        self._send(room_id, peer_id, {"type": "webrtc.offer", "sdp": {
            "type": offer.type, "sdp": offer.sdp}}, sender)

    def send_answer(self, room_id: str, peer_id: str, answer: SessionDescription,
                    sender: str = "server") -> None:
        """Deliver ``answer`` to ``peer_id`` (``webrtc.answer``)."""
        self._send(room_id, peer_id, {"type": "webrtc.answer", "sdp": {
            "type": answer.type, "sdp": answer.sdp}}, sender)

    def send_ice_candidate(self, room_id: str, peer_id: str, candidate: IceCandidate | None,
                           sender: str = "server") -> None:
        """Deliver ``candidate`` to ``peer_id`` (``webrtc.ice_candidate``; None: the end of
        candidates)."""
        body = None if candidate is None else {
            "candidate": candidate.candidate, "sdpMid": candidate.sdp_mid,
            "sdpMLineIndex": candidate.sdp_mline_index,
            "usernameFragment": candidate.username_fragment}
        self._send(room_id, peer_id, {"type": "webrtc.ice_candidate", "candidate": body},
                   sender)


class CallsExtension:
    """Call rooms from Python (see the module doc); ``config`` defaults to
    :class:`CallsConfig` (auth required, guests refused)."""

    def __init__(self, source: web.Application | Hub, config: CallsConfig | None = None
                 ) -> None:
        self.config = config = config if config is not None else CallsConfig()
        forge: ForgeDialect | None = None
        if isinstance(source, Hub):
            hub = source
            media = SfuMedia(SfuMediaConfig(node_ips=hub.config.node_ips,
                                            udp_ports=hub.config.udp_ports,
                                            consent_timeout=hub.config.consent_timeout))
            calls = CallService(media, hub.courier, max_members=config.max_members)
            media.quality = QualityMonitor(hub.clock)
        else:
            hub = source[HUB]
            media, calls = source[CALL_MEDIA], source[CALLS]
            forge = source.get(FORGE)
        self.hub = hub
        self._media = media
        self._calls = calls
        self._node_ips = hub.config.node_ips
        settings = config.settings()
        media.config = SfuMediaConfig(
            audio_codecs=settings.audio_codecs if settings.audio_enabled else (),
            video_codecs=settings.video_codecs if settings.video_enabled else (),
            audio_max_bitrate=settings.audio_max_bitrate,
            video_min_bitrate=settings.video_min_bitrate,
            video_max_bitrate=settings.video_max_bitrate,
            video_max_width=settings.video_max_width,
            video_max_height=settings.video_max_height,
            video_max_fps=settings.video_max_fps,
            node_ips=hub.config.node_ips, udp_ports=hub.config.udp_ports,
            consent_timeout=hub.config.consent_timeout,
            signaling_timeout=settings.signaling_timeout)
        media.recordings = None if config.recording_path is None else Path(
            config.recording_path)
        if not config.require_auth:
            calls.authorizer = TokenAuthorizer(AuthPolicy())
        elif config.token_secret:
            calls.authorizer = TokenAuthorizer(AuthPolicy(config.token_secret,
                                                          config.allow_guests))
        else:
            calls.authorizer = _Closed(config.allow_guests)
        if media.quality is None:
            media.quality = QualityMonitor(hub.clock)
        self.quality: QualityMonitor = media.quality
        self.signaling = SignalingManager(forge)
        self.recorder = Recorder(calls)
        self._rooms: dict[str, CallRoom] = {}

    @property
    def service(self) -> CallService:
        """The call service underneath."""
        return self._calls

    def _handle(self, room_id: str) -> CallRoom:
        handle = self._rooms.get(room_id)
        if handle is None:
            handle = self._rooms[room_id] = CallRoom(
                self._calls, room_id, self._server_peer, self._local_peer,
                self.config.signaling_timeout, self.hub.clock, self.quality)
        return handle

    def _server_peer(self, room: str, user: str) -> SfuPeer:
        return self._media.peer(room, user)

    def _local_peer(self, room: str, user: str) -> LocalPeer:
        return LocalPeer(self._calls, room, user, self.config.ice_servers(), self._node_ips)

    def create_call_room(self, room_id: str, *, name: str | None = None,
                         max_members: int | None = None, topology: str | None = None
                         ) -> CallRoom:
        """Create a room (kept until :meth:`delete_call_room`); ``topology`` defaults to
        the configuration's. An existing room of the same topology is returned."""
        validate_id("room", room_id, self.hub.config.limits.max_id_length)
        self._calls.create_room(room_id, name=name,
                                max_members=max_members or self.config.max_members,
                                topology=topology or self.config.topology)
        return self._handle(room_id)

    def get_call_room(self, room_id: str) -> CallRoom:
        """The room; :class:`~rtchub.errors.RoomNotFound` if there is none."""
        self._calls.get_room(room_id)
        return self._handle(room_id)

    def get_call_rooms(self) -> list[CallRoom]:
        """Every call room on this node."""
        return [self._handle(room.id) for room in self._calls.rooms()]

    async def delete_call_room(self, room_id: str) -> None:
        """Everyone leaves (their peers close), recording stops, the room is gone."""
        handle = self._rooms.pop(room_id, None)
        if handle is not None:
            for peer in handle.get_peers():
                with contextlib.suppress(NotInRoom):
                    await peer.close()
        await self._calls.delete_room(room_id)

    def get_sfu_router(self, room_id: str) -> SfuRouter:
        """The SFU router of ``room_id`` (its calls raise SFUNotEnabled in a mesh room)."""
        return self.get_call_room(room_id).router

    def get_signaling_manager(self) -> SignalingManager:
        """The signaling manager."""
        return self.signaling

    def get_quality_monitor(self) -> QualityMonitor:
        """Seed 003's ``GetQualityMonitor``: every SFU participant is measured already;
        ``monitor`` / ``stop`` start and stop measuring others' server peers."""
        return self.quality

    def get_recorder(self) -> Recorder:
        """The recorder."""
        return self.recorder
