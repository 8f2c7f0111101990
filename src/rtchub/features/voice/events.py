"""What the voice service tells connections, as typed events for the courier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["AUDIENCE", "EVENTS", "StreamAvailable", "StreamEnded", "StreamListeners",
           "VoiceEvent"]

AUDIENCE: Final = "voice:audience"  # the topic every voice-speaking connection subscribes to


@dataclass(frozen=True, slots=True)
class StreamAvailable:
    """A stream went live (to the audience)."""

    stream_id: str
    name: str
    started_at: float  # Unix time


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """A stream ended (to the audience; a receiver of it frees its peer)."""

    stream_id: str


@dataclass(frozen=True, slots=True)
class StreamListeners:
    """How many listen to your stream now (to its sender)."""

    stream_id: str
    webrtc: int
    mp3: int


VoiceEvent = StreamAvailable | StreamEnded | StreamListeners
EVENTS: Final = (StreamAvailable, StreamEnded, StreamListeners)
