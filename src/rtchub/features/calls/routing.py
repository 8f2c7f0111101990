"""What flows through a call room's SFU: negotiation and subscriptions (seed 003's router).

:class:`SfuRouting` is one part of :class:`~rtchub.features.calls.service.CallService`
(mixed into it, never used alone): the client's offers, answers and candidates, the
labels of what it publishes, and which tracks each participant receives at which
quality (``subscribe_to_track``, ``unsubscribe_from_track``, ``set_quality``,
``get_available_tracks``). A participant's subscriptions reach the media plane only once
its first offer is answered (``_negotiated``); those noted before start then. The
service keeps the rooms and who is told what (``_broadcast``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from rtchub.errors import InvalidField, RtcHubError, TrackNotFound, Unauthorized
from rtchub.features.calls.events import CallEvent, TracksChanged
from rtchub.features.calls.ports import CallMedia
from rtchub.features.calls.rules import (
    DEFAULT_QUALITY,
    CallRoom,
    Participant,
    TrackInfo,
    check_quality,
    check_source,
    muted_state,
    quality_layer,
)

__all__ = ["SfuRouting"]


class SfuRouting:
    """Negotiation and subscriptions of SFU participants; see the module docstring."""

    _media: CallMedia
    _negotiated: set[tuple[str, str]]  # (room, participant) whose first offer is answered

    if TYPE_CHECKING:  # given by the service this is part of
        def participant(self, room_id: str, user_id: str) -> Participant: ...
        def _sfu(self, room_id: str, what: str) -> CallRoom: ...
        def _broadcast(self, room: CallRoom, event: CallEvent,
                       but: str | None = None) -> None: ...

    # -- SFU: negotiation ----------------------------------------------------------------

    async def accept_offer(self, room_id: str, user_id: str, sdp: str) -> str | None:
        """The client's offer (it publishes or renegotiates): the server's answer, or
        None on glare (``sfu_ignored``). The first one also starts the participant's
        automatic subscriptions."""
        room = self._sfu(room_id, "an SFU offer")
        self.participant(room_id, user_id)
        answer = await self._media.accept_offer(room_id, user_id, sdp)
        key = (room_id, user_id)
        if answer is not None and key not in self._negotiated and key[1] in room.participants:
            self._negotiated.add(key)
            participant = room.participants[user_id]
            # subscriptions noted before this first negotiation (tracks published, or
            # subscribe requests, while the participant had no connection) start now
            for track_id in list(participant.subscriptions):
                if track_id in room.tracks:
                    self._media.subscribe(room_id, user_id, track_id)
            if participant.auto_subscribe and participant.grants.subscribe:
                for track in list(room.tracks.values()):
                    if track.publisher != user_id:
                        self._subscribe(room, participant, track)
        return answer

    async def accept_answer(self, room_id: str, user_id: str, sdp: str) -> None:
        """The client's answer to the server's offer."""
        self._sfu(room_id, "an SFU answer")
        self.participant(room_id, user_id)
        await self._media.accept_answer(room_id, user_id, sdp)

    async def add_ice_candidate(self, room_id: str, user_id: str, candidate: str | None,
                                sdp_mid: str | None = None,
                                sdp_mline_index: int | None = None) -> None:
        """A trickled candidate of the client (None: end of candidates)."""
        self._sfu(room_id, "an SFU candidate")
        self.participant(room_id, user_id)
        await self._media.add_candidate(room_id, user_id, candidate, sdp_mid, sdp_mline_index)

    def label_track(self, room_id: str, user_id: str, track_id: str, source: str) -> None:
        """The client says what a track it sends (or is about to send) is: microphone,
        camera or screen. Applies to a published track at once, else when it appears."""
        room = self._sfu(room_id, "publish")
        participant = self.participant(room_id, user_id)
        if not participant.grants.publish:
            raise Unauthorized(f"{user_id!r} may not publish in room {room_id!r}")
        source = check_source(source)
        if not isinstance(track_id, str) or not track_id or len(track_id) > 256:
            raise InvalidField("'track_id' must be a non-empty string")
        participant.labels[track_id] = source
        if len(participant.labels) > 64:  # bounded: oldest labels go first
            participant.labels.pop(next(iter(participant.labels)))
        track = room.tracks.get(track_id)
        if track is not None and track.publisher == user_id and track.source != source:
            track = replace(track, source=source)
            room.tracks[track_id] = replace(track, muted=muted_state(participant, track))
            self._broadcast(room, TracksChanged(room_id, tuple(room.tracks.values())))

    # -- SFU: the router -----------------------------------------------------------------

    def subscribe_to_track(self, room_id: str, subscriber: str, track_id: str,
                           publisher: str | None = None) -> None:
        """Receive ``track_id`` (seed 003's ``SubscribeToTrack``); ``publisher``, when
        given, must be the track's. Raises :class:`TrackNotFound`, :class:`NotInRoom`,
        :class:`SFUNotEnabled`, :class:`Unauthorized` (no subscribe grant)."""
        room = self._sfu(room_id, "subscribe")
        participant = self.participant(room_id, subscriber)
        track = room.track(track_id)
        if publisher is not None and track.publisher != publisher:
            raise _not_found(room, track_id, publisher)
        if not participant.grants.subscribe:
            raise Unauthorized(f"{subscriber!r} may not subscribe in room {room_id!r}")
        if track.publisher == subscriber:
            raise InvalidField("a participant does not subscribe to its own track")
        self._subscribe(room, participant, track)

    def unsubscribe_from_track(self, room_id: str, subscriber: str, track_id: str,
                               publisher: str | None = None) -> None:
        """Stop receiving ``track_id`` (seed 003's ``UnsubscribeFromTrack``)."""
        room = self._sfu(room_id, "unsubscribe")
        participant = self.participant(room_id, subscriber)
        track = room.track(track_id)
        if publisher is not None and track.publisher != publisher:
            raise _not_found(room, track_id, publisher)
        if track_id in participant.subscriptions:
            participant.subscriptions.discard(track_id)
            self._media.unsubscribe(room_id, subscriber, track_id)

    def set_quality(self, room_id: str, track_id: str, receiver_id: str,
                    quality: str) -> None:
        """The layer ``receiver_id`` wants of ``track_id``: low, medium or high (seed 003's
        ``SetQuality``; anything else raises :class:`InvalidQuality`), simulcast layer
        0, 1 or 2 (q, h, f): the most it is forwarded, which adaptive quality may lower
        but never exceed. New subscribers get ``low`` until they ask."""
        quality = check_quality(quality)
        room = self._sfu(room_id, "set_quality")
        participant = self.participant(room_id, receiver_id)
        room.track(track_id)
        participant.qualities[track_id] = quality
        self._media.set_quality(room_id, receiver_id, track_id, quality_layer(quality))

    def get_quality(self, room_id: str, track_id: str, receiver_id: str) -> str:
        """The quality asked for (``low`` until asked, as forge starts new subscribers)."""
        return self.participant(room_id, receiver_id).qualities.get(track_id,
                                                                    DEFAULT_QUALITY)

    def get_available_tracks(self, room_id: str) -> list[TrackInfo]:
        """Seed 003's ``GetAvailableTracks``: every published track (id, publisher, kind,
        source, mute)."""
        return list(self._sfu(room_id, "get_available_tracks").tracks.values())

    def subscriptions(self, room_id: str, user_id: str) -> set[str]:
        """Track ids the participant receives (or will, after the next negotiation)."""
        return set(self.participant(room_id, user_id).subscriptions)

    def _subscribe(self, room: CallRoom, participant: Participant, track: TrackInfo) -> None:
        if track.track_id in participant.subscriptions:
            return
        participant.subscriptions.add(track.track_id)
        if (room.id, participant.id) in self._negotiated:
            self._media.subscribe(room.id, participant.id, track.track_id)


def _not_found(room: CallRoom, track_id: str, publisher: str) -> RtcHubError:
    return TrackNotFound(f"{publisher!r} publishes no track {track_id[:80]!r} in room "
                         f"{room.id!r}")
