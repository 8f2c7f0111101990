"""Recording a room's tracks as they are forwarded: one file per track, no transcoding.

See ``docs/recording.md``. The entry point is :class:`RoomRecording`: give it
the room, an output directory and (as participants publish) each track's
packet source, then start, pause, resume and stop it.
"""

from rtchub.media.recording.codecs import supported_codecs
from rtchub.media.recording.limits import RecordingLimits
from rtchub.media.recording.manifest import Pause, RecordingStatus, TrackStatus
from rtchub.media.recording.room import PacketSource, RoomRecording
from rtchub.media.recording.state import (
    RecordingOutputError,
    RecordingState,
    RecordingStateError,
    TrackAlreadyRecorded,
)

__all__ = [
    "PacketSource",
    "Pause",
    "RecordingLimits",
    "RecordingOutputError",
    "RecordingState",
    "RecordingStateError",
    "RecordingStatus",
    "RoomRecording",
    "TrackAlreadyRecorded",
    "TrackStatus",
    "supported_codecs",
]
