"""The media of SFU call rooms: one server peer per participant, on ``rtchub.media``.

:class:`SfuMedia` implements the service's :class:`~.service.CallMedia`: it owns an
:class:`~rtchub.media.sfu.SfuPeer` per participant, the published tracks by id, the
subscriptions, the active-speaker detector, the "chat" data channels and the room's
:class:`~rtchub.media.recording.RoomRecording`; it reports what happens through the
service's :class:`~.service.MediaEvents`. It decides nothing about who may do what.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from aiortc.rtp import RtpPacket

from rtchub.errors import ConnectionFailed, NotInRoom, RtcHubError, TrackNotFound
from rtchub.features.calls.adapting import CallAdaptation
from rtchub.features.calls.ports import MediaEvents
from rtchub.features.calls.quality import QualityMonitor
from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.rules import RecordingInfo
from rtchub.media.fanout import ForwardingStats
from rtchub.media.recording import RecordingState, RoomRecording
from rtchub.media.recording.manifest import RecordingStatus
from rtchub.media.recording.state import RecordingStateError
from rtchub.media.sfu import (
    ActiveSpeakerDetector,
    DataChannel,
    Downtrack,
    InboundPacket,
    PublishedTrack,
    SfuMediaConfig,
    SfuPeer,
    SpeakerPolicy,
    Subscription,
    SubscriptionState,
    TrackUplink,
)
from rtchub.media.sfu.layers import OneLayer

__all__ = ["CHAT_LABEL", "SfuMedia", "recording_info"]

log = logging.getLogger("rtchub.calls")

CHAT_LABEL = "chat"
_MAX_CHAT_BYTES = 16 * 1024


class _Held:
    """A layer selector that admits nothing: the track is muted by the server."""

    layer = 0

    def admit(self, packet: InboundPacket) -> bool:
        return False


_HELD = _Held()


class _RecordedSource:
    """An SFU track's uplink as the recorder's packet source (aiortc ``RtpPacket``s)."""

    def __init__(self, uplink: TrackUplink) -> None:
        self._uplink = uplink
        self._ssrc = uplink.layers[0].ssrc or 1  # one SSRC for every layer recorded

    def listen(self, key: int, listener: Callable[[RtpPacket], None]) -> None:
        # a simulcast track is recorded as one stream: its best layer, switched at keyframes
        one = OneLayer(self._uplink)

        def convert(p: InboundPacket) -> None:
            kept = one(p)
            if kept is None:
                return
            seq, timestamp, payload = kept
            ssrc = self._ssrc if self._uplink.simulcast else p.ssrc
            listener(RtpPacket(payload_type=p.payload_type, marker=int(p.marker),
                               sequence_number=seq, timestamp=timestamp, ssrc=ssrc,
                               payload=payload))
        self._uplink.listen(("rec", key), convert)

    def unlisten(self, key: int) -> None:
        self._uplink.unlisten(("rec", key))

    async def request_keyframe(self) -> None:
        for layer in range(len(self._uplink.layers)):  # the one followed is among them
            self._uplink.request_keyframe(layer)


def recording_info(status: RecordingStatus | None) -> RecordingInfo:
    """The call feature's view of a recording's status."""
    if status is None:
        return RecordingInfo()
    return RecordingInfo(status.state.value, status.started_at, round(status.duration, 3),
                         None if status.directory is None else str(status.directory),
                         tuple(t.file for t in status.tracks if t.file),
                         status.reason)


class _RoomMedia:
    """One SFU room's media on this node."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.peers: dict[str, SfuPeer] = {}
        self.tracks: dict[str, PublishedTrack] = {}
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        self.chat: dict[str, DataChannel] = {}
        self.held: set[str] = set()
        # (subscriber, track id) -> the highest simulcast layer it gets (set_quality)
        self.ceilings: dict[tuple[str, str], int] = {}
        self.recording: RoomRecording | None = None
        self.speaker: ActiveSpeakerDetector[str] | None = None


class SfuMedia:
    """The SFU media plane of every call room on this node (see the module doc).

    ``recordings`` is the directory recordings go under (None: recording refused);
    ``clock`` (monotonic) drives the peers and the speaker detector, ``wall`` names
    recording files.
    """

    def __init__(self, config: SfuMediaConfig, recordings: Path | str | None = None, *,
                 stats: ForwardingStats | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 speaker_policy: SpeakerPolicy | None = None) -> None:
        self.config = config
        self.recordings = None if recordings is None else Path(recordings)
        self.stats = stats or ForwardingStats()
        self._clock = clock
        self._wall = wall
        self._policy = speaker_policy
        self._rooms: dict[str, _RoomMedia] = {}
        self._events: MediaEvents | None = None
        self._quality: QualityMonitor | None = None
        self.adaptation: CallAdaptation | None = None  # CALL_ADAPTIVE_QUALITY

    @property
    def quality(self) -> QualityMonitor | None:
        """The quality monitor every SFU participant is measured by (None: not measured)."""
        return self._quality

    @quality.setter
    def quality(self, monitor: QualityMonitor | None) -> None:
        self._quality = monitor
        if monitor is not None:
            monitor.on_room_report = self._quality_report

    def _quality_report(self, room: str, qualities: tuple[ConnectionQuality, ...]) -> None:
        self.events.quality_changed(room, qualities)

    def attach(self, events: MediaEvents) -> None:
        """Where to report (the call service)."""
        self._events = events

    @property
    def events(self) -> MediaEvents:
        """The service this media plane reports to."""
        if self._events is None:
            raise RuntimeError("SfuMedia is not attached to a call service")
        return self._events

    def peer(self, room: str, participant: str) -> SfuPeer:
        """A participant's server peer (for stats); :class:`NotInRoom` if none."""
        found = self._rooms.get(room)
        peer = None if found is None else found.peers.get(participant)
        if peer is None:
            raise NotInRoom(f"{participant!r} has no peer in call room {room!r}")
        return peer

    def _room(self, room: str) -> _RoomMedia:
        found = self._rooms.get(room)
        if found is None:
            found = self._rooms[room] = _RoomMedia(room)
            events = self.events
            found.speaker = ActiveSpeakerDetector(
                lambda who: events.active_speaker(room, who), self._policy)
        return found

    # -- peers ---------------------------------------------------------------------------

    def open_peer(self, room: str, participant: str) -> None:
        """A server peer for a new participant."""
        media = self._room(room)
        events = self.events

        async def offer(sdp: str) -> None:
            await events.server_offer(room, participant, sdp)

        peer = SfuPeer(participant, self.config, offer, stats=self.stats, clock=self._clock)
        peer.on_track_published = lambda track: self._published(media, participant, track)
        peer.on_track_unpublished = lambda track: self._unpublished(media, participant, track)
        peer.on_data_channel = lambda channel: self._channel(media, participant, channel)
        peer.on_failed = lambda error: events.peer_failed(room, participant, error)
        old = media.peers.get(participant)
        if old is not None:
            log.warning("a second peer for %r in %r: the first is dropped", participant, room)
        media.peers[participant] = peer
        if self._quality is not None:
            self._quality.monitor(peer, room)

    async def close_peer(self, room: str, participant: str) -> None:
        """Close the participant's peer: its tracks end, its subscriptions end."""
        media = self._rooms.get(room)
        if media is None:
            return
        peer = media.peers.pop(participant, None)
        if self._quality is not None:
            self._quality.stop(participant, room)
        media.chat.pop(participant, None)
        for key in [k for k in media.subscriptions if k[0] == participant]:
            media.subscriptions.pop(key, None)
        for key in [k for k in media.ceilings if k[0] == participant]:
            del media.ceilings[key]
        if peer is not None:
            await peer.close()

    def _live_peer(self, room: str, participant: str) -> SfuPeer:
        peer = self.peer(room, participant)
        if peer.closed:
            raise ConnectionFailed(f"the peer connection of {participant!r} has closed: "
                                   f"leave and join again")
        return peer

    async def accept_offer(self, room: str, participant: str, sdp: str) -> str | None:
        """Answer the client's offer (None: glare)."""
        return await self._live_peer(room, participant).accept_offer(sdp)

    async def accept_answer(self, room: str, participant: str, sdp: str) -> None:
        """Apply the client's answer."""
        await self._live_peer(room, participant).accept_answer(sdp)

    async def add_candidate(self, room: str, participant: str, candidate: str | None,
                            sdp_mid: str | None, sdp_mline_index: int | None) -> None:
        """A trickled candidate."""
        await self._live_peer(room, participant).add_ice_candidate(candidate, sdp_mid,
                                                                   sdp_mline_index)

    # -- tracks --------------------------------------------------------------------------

    def _published(self, media: _RoomMedia, participant: str, track: PublishedTrack) -> None:
        if track.track_id in media.tracks:
            log.warning("track id %r published twice in %r: ignored", track.track_id,
                        media.room)
            return
        media.tracks[track.track_id] = track
        adaptation = self.adaptation
        if adaptation is not None and track.kind == "video":
            room, track_id = media.room, track.track_id
            track.uplink.cap_source = lambda: adaptation.cap_for(room, track_id)
        if track.kind == "audio" and media.speaker is not None:
            speaker = media.speaker
            clock = self._clock
            track.on_audio_level = lambda level, voice: speaker.observe(participant, level,
                                                                        clock())
        if media.recording is not None and media.recording.state in (
                RecordingState.RECORDING, RecordingState.PAUSED):
            self._record_track(media.recording, participant, track)
        self.events.track_published(media.room, participant, track.track_id, track.kind,
                                    track.stream_id or participant)

    def _unpublished(self, media: _RoomMedia, participant: str,
                     track: PublishedTrack) -> None:
        if media.tracks.get(track.track_id) is not track:
            return
        del media.tracks[track.track_id]
        media.held.discard(track.track_id)
        for key in [k for k in media.subscriptions if k[1] == track.track_id]:
            media.subscriptions.pop(key, None)
        for key in [k for k in media.ceilings if k[1] == track.track_id]:
            del media.ceilings[key]
        if track.kind == "audio" and media.speaker is not None:
            media.speaker.forget(participant, self._clock())
        if media.recording is not None:
            # not recorded if it was added while the recording was not running
            with contextlib.suppress(RtcHubError):
                media.recording.remove_track(track.track_id)
        self.events.track_ended(media.room, participant, track.track_id)

    def subscribe(self, room: str, subscriber: str, track_id: str) -> None:
        """Forward ``track_id`` to ``subscriber`` (its peer offers the new section)."""
        media = self._rooms.get(room)
        track = None if media is None else media.tracks.get(track_id)
        if media is None or track is None:
            raise TrackNotFound(f"track {track_id[:80]!r} is not published in {room!r}")
        key = (subscriber, track_id)
        existing = media.subscriptions.get(key)
        if existing is not None and existing.state is not SubscriptionState.ENDED:
            return
        subscription = self._live_peer(room, subscriber).subscribe(track)
        subscription.layer_ceiling = media.ceilings.get(key, 0)  # new subscribers: low
        media.subscriptions[key] = subscription

        def changed(sub: Subscription) -> None:
            if self.adaptation is not None:
                self.adaptation.follow(room, sub)
            if sub.state is SubscriptionState.ACTIVE and sub.downtrack is not None:
                if sub.track.track_id in media.held:
                    sub.downtrack.selector = _HELD
            elif sub.state is SubscriptionState.ENDED and media.subscriptions.get(key) is sub:
                del media.subscriptions[key]

        subscription.on_state_change = changed

    def unsubscribe(self, room: str, subscriber: str, track_id: str) -> None:
        """Stop forwarding ``track_id`` to ``subscriber``."""
        media = self._rooms.get(room)
        subscription = None if media is None else media.subscriptions.pop(
            (subscriber, track_id), None)
        peer = None if media is None else media.peers.get(subscriber)
        if subscription is not None and peer is not None:
            peer.unsubscribe(subscription)

    def set_quality(self, room: str, subscriber: str, track_id: str, layer: int) -> None:
        """Forward at most simulcast layer ``layer`` of ``track_id`` to ``subscriber``
        (kept for a subscription to come; new subscriptions get layer 0)."""
        media = self._rooms.get(room)
        if media is None or track_id not in media.tracks:
            return
        media.ceilings[(subscriber, track_id)] = layer
        subscription = media.subscriptions.get((subscriber, track_id))
        if subscription is not None:
            subscription.layer_ceiling = layer  # a downtrack still to come starts there
            downtrack = subscription.downtrack
            if downtrack is not None and downtrack.layers is not None:
                downtrack.layers.set_ceiling(layer)

    def downtrack(self, room: str, subscriber: str, track_id: str) -> Downtrack | None:
        """The forwarding state of ``track_id`` to ``subscriber`` while it is active: its
        ``layers`` (:class:`~rtchub.media.sfu.layers.LayerSwitch`) is where adaptive
        quality sets a target under the subscriber's ceiling."""
        media = self._rooms.get(room)
        subscription = None if media is None else media.subscriptions.get((subscriber,
                                                                            track_id))
        if subscription is None or subscription.state is not SubscriptionState.ACTIVE:
            return None
        return subscription.downtrack

    def track_uplink(self, room: str, track_id: str) -> TrackUplink | None:
        """What ``track_id`` receives from its publisher (its simulcast layers, their
        bitrates), while it is published."""
        media = self._rooms.get(room)
        track = None if media is None else media.tracks.get(track_id)
        return None if track is None else track.uplink

    def set_track_muted(self, room: str, track_id: str, muted: bool) -> None:
        """Hold a track (forward nothing of it) or let it go again (a keyframe first)."""
        media = self._rooms.get(room)
        track = None if media is None else media.tracks.get(track_id)
        if media is None or track is None:
            return
        if muted:
            media.held.add(track_id)
        else:
            media.held.discard(track_id)
        for subscription in list(track.subscriptions):
            if subscription.downtrack is not None:
                subscription.downtrack.selector = _HELD if muted else None
        if not muted and track.kind == "video":
            track.request_keyframe()

    # -- chat ----------------------------------------------------------------------------

    def _channel(self, media: _RoomMedia, participant: str, channel: DataChannel) -> None:
        if channel.label != CHAT_LABEL:
            return
        media.chat[participant] = channel
        events = self.events

        def message(data: bytes | str) -> None:
            text = _chat_text(data)
            if text is not None:
                events.chat_received(media.room, participant, text)

        def closed() -> None:
            if media.chat.get(participant) is channel:
                del media.chat[participant]

        channel.on_message = message
        channel.on_close = closed

    def send_chat(self, room: str, participant: str, payload: str) -> bool:
        """Send ``payload`` on the participant's open "chat" channel; False if it has none."""
        media = self._rooms.get(room)
        channel = None if media is None else media.chat.get(participant)
        if channel is None or channel.ready_state != "open":
            return False
        try:
            channel.send_text(payload)
        except ConnectionFailed:
            return False
        return True

    # -- recording -----------------------------------------------------------------------

    def _record_track(self, recording: RoomRecording, participant: str,
                      track: PublishedTrack) -> None:
        codecs = track.uplink.codecs
        if not codecs:
            return
        payload_type, codec = next(iter(codecs.items()))
        try:
            recording.add_track(track.track_id, participant=participant,
                                codec=codec.mime(track.kind),
                                source=_RecordedSource(track.uplink),
                                payload_type=payload_type)
        except RtcHubError as err:
            log.warning("track %r of %r is not recorded: %s", track.track_id, participant, err)

    async def record(self, room: str, action: str) -> RecordingInfo:
        """Start, stop, pause, resume or read the room's recording."""
        media = self._room(room)
        current = media.recording
        if action == "status":
            return recording_info(None if current is None else current.status())
        if action == "start":
            if current is not None and current.state not in (RecordingState.STOPPED,
                                                             RecordingState.FAILED):
                raise RecordingStateError(f"cannot start the recording of room {room!r}: "
                                          f"expected idle, got {current.state.value}")
            if self.recordings is None:
                raise ConnectionFailed("recording is not configured on this server "
                                       "(no recording output path)")
            events = self.events
            holder: list[RoomRecording] = []

            def changed() -> None:
                if holder:
                    events.recording_changed(room, recording_info(holder[0].status()))

            recording = RoomRecording(room, self.recordings, wall=self._wall,
                                      on_change=changed)
            holder.append(recording)
            media.recording = recording
            for track in media.tracks.values():
                self._record_track(recording, track.publisher_id, track)
            return recording_info(await recording.start())
        if current is None:
            raise RecordingStateError(f"cannot {action} the recording of room {room!r}: "
                                      f"expected recording, got idle")
        if action == "stop":
            return recording_info(await current.stop())
        if action == "pause":
            return recording_info(await current.pause())
        if action == "resume":
            return recording_info(await current.resume())
        raise ValueError(f"unknown recording action {action!r}")

    async def close_room(self, room: str) -> None:
        """Stop the room's recording and close every peer left."""
        media = self._rooms.pop(room, None)
        if media is None:
            return
        if media.recording is not None:
            try:
                await media.recording.close()
            except Exception:
                log.exception("closing the recording of %r failed", room)
        for participant in list(media.peers):
            peer = media.peers.pop(participant)
            if self._quality is not None:
                self._quality.stop(participant, room)
            await peer.close()

    def room_ids(self) -> list[str]:
        """Rooms with media on this node."""
        return list(self._rooms)


def _chat_text(data: bytes | str) -> str | None:
    """The text of a data-channel chat message: JSON ``{"text": ...}`` or plain text."""
    if isinstance(data, bytes):
        if len(data) > _MAX_CHAT_BYTES:
            return None
        try:
            data = data.decode()
        except UnicodeDecodeError:
            return None
    if len(data) > _MAX_CHAT_BYTES:
        return None
    stripped = data.lstrip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except ValueError:
            return data
        text = obj.get("text") if isinstance(obj, dict) else None
        return text if isinstance(text, str) else None
    return data
