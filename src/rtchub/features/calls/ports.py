"""What the call service is given: who may join (:class:`Authorizer`), and the media
plane it drives (:class:`CallMedia`), which calls it back (:class:`MediaEvents`).

:mod:`.service` is written against these; :mod:`.live` implements :class:`CallMedia` on
``rtchub.media.sfu`` and ``rtchub.media.recording``; :mod:`.auth` gives the token
:class:`Authorizer`. :class:`DevAuthorizer` is the default: a dev server's guests.
"""

from __future__ import annotations

from typing import Protocol

from rtchub.errors import RtcHubError
from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.rules import Grants, RecordingInfo

__all__ = ["Authorizer", "CallMedia", "DevAuthorizer", "MediaEvents"]


class Authorizer(Protocol):
    """Who may join a call room, as whom and with which grants (join tokens)."""

    def authorize(self, room: str, token: str | None, requested: str | None) -> Grants:
        """The grants of a join; raise :class:`Unauthorized` to refuse it. ``token`` is
        the join's ``access_token``; ``requested`` the id the client asked for."""
        ...


class DevAuthorizer:
    """Dev mode (no token secret configured): everyone is a guest.

    A guest may publish and subscribe; recording and admin (muting others) need a
    token. A token given anyway is ignored: there is no secret to check it with.
    """

    def __init__(self, grants: Grants | None = None) -> None:
        self.grants = grants or Grants(publish=True, subscribe=True, record=False, admin=False)

    def authorize(self, room: str, token: str | None, requested: str | None) -> Grants:
        """The guest grants, for any room."""
        return Grants(requested, room, self.grants.publish, self.grants.subscribe,
                      self.grants.record, self.grants.admin)


class MediaEvents(Protocol):
    """What the media plane tells the service (the service implements these)."""

    async def server_offer(self, room: str, participant: str, sdp: str) -> None:
        """The participant's server peer offers (deliver it to the client)."""
        ...

    def track_published(self, room: str, participant: str, track_id: str, kind: str,
                        stream_id: str) -> None:
        """The participant started sending a track."""
        ...

    def track_ended(self, room: str, participant: str, track_id: str) -> None:
        """The participant stopped sending a track."""
        ...

    def active_speaker(self, room: str, participant: str | None) -> None:
        """The loudest participant changed."""
        ...

    def chat_received(self, room: str, participant: str, text: str) -> None:
        """A message on the participant's "chat" data channel."""
        ...

    def peer_failed(self, room: str, participant: str, error: RtcHubError) -> None:
        """The participant's peer connection ended with ``error``."""
        ...

    def recording_changed(self, room: str, info: RecordingInfo) -> None:
        """The room's recording changed state on its own (it failed, a file opened)."""
        ...

    def quality_changed(self, room: str, qualities: tuple[ConnectionQuality, ...]) -> None:
        """The quality monitor measured the room's participants and someone's changed."""
        ...


class CallMedia(Protocol):
    """The SFU media plane, one server peer per participant (see :mod:`.live`)."""

    def attach(self, events: MediaEvents) -> None:
        """Where to report what happens (called once by the service)."""
        ...

    def open_peer(self, room: str, participant: str) -> None:
        """A peer connection for a new participant of an SFU room."""
        ...

    async def close_peer(self, room: str, participant: str) -> None:
        """Close it: its tracks end, its subscriptions end."""
        ...

    async def accept_offer(self, room: str, participant: str, sdp: str) -> str | None:
        """Answer the client's offer (None: glare, the server's offer stands)."""
        ...

    async def accept_answer(self, room: str, participant: str, sdp: str) -> None:
        """Apply the client's answer to the server's offer."""
        ...

    async def add_candidate(self, room: str, participant: str, candidate: str | None,
                            sdp_mid: str | None, sdp_mline_index: int | None) -> None:
        """A trickled ICE candidate of the client (None: end of candidates)."""
        ...

    def subscribe(self, room: str, subscriber: str, track_id: str) -> None:
        """Start forwarding ``track_id`` to ``subscriber`` (renegotiates)."""
        ...

    def unsubscribe(self, room: str, subscriber: str, track_id: str) -> None:
        """Stop forwarding it (renegotiates)."""
        ...

    def set_track_muted(self, room: str, track_id: str, muted: bool) -> None:
        """Forward nothing of a track while the server holds it muted."""
        ...

    def set_quality(self, room: str, subscriber: str, track_id: str, layer: int) -> None:
        """Forward at most simulcast layer ``layer`` of ``track_id`` to ``subscriber``
        (now, or once it subscribes)."""
        ...

    def send_chat(self, room: str, participant: str, payload: str) -> bool:
        """Send on the participant's "chat" data channel (False: it has none open)."""
        ...

    async def record(self, room: str, action: str) -> RecordingInfo:
        """Start, stop, pause, resume the room's recording, or read its status."""
        ...

    async def close_room(self, room: str) -> None:
        """The room is gone: stop its recording and close whatever is left."""
        ...
