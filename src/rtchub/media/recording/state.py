"""A room recording's lifecycle, with checked transitions, and the errors it raises.

    idle ──start──> starting ──> recording ──pause──> paused
                                   │  ^─────resume───────┘ │
                                   └──stop──> stopping <──stop
                                                 │
                                              stopped
    starting, recording, paused, stopping ──(output error)──> failed

Errors, in rtchub's one exception tree (:mod:`rtchub.errors`):

    RecordingStateError    (Conflict)      recording_state          409
    TrackAlreadyRecorded   (Conflict)      track_already_recorded   409
    RecordingOutputError   (RtcHubError)   recording_output         500

plus :class:`rtchub.errors.TrackNotFound` for a track the recording does not
have and :class:`rtchub.errors.CodecNotSupported` for a codec it cannot write.
"""

from __future__ import annotations

import enum
from typing import Final

from rtchub.errors import Conflict, RtcHubError

__all__ = ["RecordingOutputError", "RecordingState", "RecordingStateError",
           "TrackAlreadyRecorded", "require", "transition"]


class RecordingState(enum.Enum):
    """Where a room recording is in its life."""

    IDLE = "idle"
    STARTING = "starting"  # creating its directory and manifest
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


# What each operation may start from, and the state it leads to.
_ACTIONS: Final[dict[str, tuple[tuple[RecordingState, ...], RecordingState]]] = {
    "start": ((RecordingState.IDLE,), RecordingState.STARTING),
    "pause": ((RecordingState.RECORDING,), RecordingState.PAUSED),
    "resume": ((RecordingState.PAUSED,), RecordingState.RECORDING),
    "stop": ((RecordingState.RECORDING, RecordingState.PAUSED), RecordingState.STOPPING),
}


class RecordingStateError(Conflict):
    """An operation the recording's current state does not allow."""

    code = "recording_state"


class TrackAlreadyRecorded(Conflict):
    """The track is already part of this recording."""

    code = "track_already_recorded"


class RecordingOutputError(RtcHubError):
    """The recording cannot write where it was told to (not writable, disk full...)."""

    code = "recording_output"
    http_status = 500


def _names(states: tuple[RecordingState, ...]) -> str:
    return " or ".join(state.value for state in states)


def transition(action: str, room_id: str, current: RecordingState) -> RecordingState:
    """The state ``action`` (start, pause, resume, stop) leads to from ``current``; raise
    :class:`RecordingStateError` when it cannot be done from there."""
    sources, target = _ACTIONS[action]
    require(action, room_id, current, sources)
    return target


def require(action: str, room_id: str, current: RecordingState,
            allowed: tuple[RecordingState, ...]) -> None:
    """Raise :class:`RecordingStateError` unless ``current`` is one of ``allowed``."""
    if current not in allowed:
        raise RecordingStateError(f"cannot {action} the recording of room {room_id!r}: "
                                  f"expected {_names(allowed)}, got {current.value}")
