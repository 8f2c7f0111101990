"""Control of a call room's server-side recording, for the API and participants with the
record grant.

:class:`CallRecording` is one part of :class:`~rtchub.features.calls.service.CallService`
(mixed into it, never used alone): start, stop, pause, resume and status go to the media
plane (``CallMedia.record``); every change, asked for or reported by the media plane
(``recording_changed``), is kept on the room and told to everyone in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtchub.errors import InvalidField, Unauthorized
from rtchub.features.calls.events import CallEvent, RecordingChanged
from rtchub.features.calls.ports import CallMedia
from rtchub.features.calls.rules import RECORD_ACTIONS, CallRoom, Participant, RecordingInfo

__all__ = ["CallRecording"]


class CallRecording:
    """Recording control of SFU rooms; see the module docstring."""

    _media: CallMedia
    _rooms: dict[str, CallRoom]

    if TYPE_CHECKING:  # given by the service this is part of
        def participant(self, room_id: str, user_id: str) -> Participant: ...
        def _sfu(self, room_id: str, what: str) -> CallRoom: ...
        def _broadcast(self, room: CallRoom, event: CallEvent,
                       but: str | None = None) -> None: ...

    # -- asked for -----------------------------------------------------------------------

    async def recording(self, room_id: str, action: str, user_id: str | None = None
                        ) -> RecordingInfo:
        """Start, stop, pause, resume the room's recording or read its ``status``;
        ``user_id`` (a participant acting over the wire) needs the record grant.
        Everyone is told of a change (``recording``)."""
        room = self._sfu(room_id, "recording")
        if action not in RECORD_ACTIONS:
            raise InvalidField(f"'action' must be one of {', '.join(RECORD_ACTIONS)}")
        if user_id is not None and not self.participant(room_id, user_id).grants.record:
            raise Unauthorized(f"{user_id!r} may not record room {room_id!r}")
        info = await self._media.record(room_id, action)
        if action != "status" or info != room.recording:
            self.recording_changed(room_id, info)
        return info

    async def start_recording(self, room_id: str) -> RecordingInfo:
        """Start recording every track of the room (one file per track, a manifest)."""
        return await self.recording(room_id, "start")

    async def stop_recording(self, room_id: str) -> RecordingInfo:
        """Stop: every file closed, the manifest final."""
        return await self.recording(room_id, "stop")

    async def pause_recording(self, room_id: str) -> RecordingInfo:
        """Pause: the files get a gap the manifest lists."""
        return await self.recording(room_id, "pause")

    async def resume_recording(self, room_id: str) -> RecordingInfo:
        """Resume after a pause."""
        return await self.recording(room_id, "resume")

    async def recording_status(self, room_id: str) -> RecordingInfo:
        """The recording as it is now."""
        return await self.recording(room_id, "status")

    # -- what the media plane tells us (MediaEvents) -------------------------------------

    def recording_changed(self, room: str, info: RecordingInfo) -> None:
        """Keep the room's recording state and tell everyone."""
        call = self._rooms.get(room)
        if call is None or info == call.recording:
            return
        call.recording = info
        self._broadcast(call, RecordingChanged(room, info))
