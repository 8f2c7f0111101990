"""What the voice service tells connections, as typed events for the courier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["AUDIENCE", "EVENTS", "MEDIA", "NODE_EVENTS", "ListenerReport", "MediaDemand",
           "MediaPacket", "StreamAvailable", "StreamEnded", "StreamListeners", "VoiceEvent"]

AUDIENCE: Final = "voice:audience"  # the topic every voice-speaking connection subscribes to
# the courier address (connection part) of each node's voice media relay
MEDIA: Final = "voice:media"


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


# -- between nodes (to a node's MEDIA address) -----------------------------------------


@dataclass(frozen=True, slots=True)
class MediaDemand:
    """Node ``node`` has listeners of ``stream_id`` (``wanted``) or none any more."""

    stream_id: str
    node: str
    wanted: bool


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One RTP packet of ``stream_id``, from the node that receives it from its sender."""

    stream_id: str
    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ListenerReport:
    """How many listen to ``stream_id`` on ``node`` (to the stream's node, which tells
    the sender the sum)."""

    stream_id: str
    node: str
    webrtc: int
    mp3: int


NODE_EVENTS: Final = (MediaDemand, MediaPacket, ListenerReport)
