"""The voice stream directory and its announcements (seed 002). No media, no I/O.

:class:`VoiceService` records which streams are live (rules in
:mod:`~rtchub.features.voice.rules`), and tells through the courier: every voice-speaking
connection subscribes to one topic and hears ``StreamAvailable`` / ``StreamEnded``; a
sender hears how many listen to it (``StreamListeners``, at most once per
``LISTENER_INTERVAL``). The media of a live stream is :mod:`~rtchub.features.voice.live`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from rtchub.base.clock import Clock, Timer
from rtchub.base.connection import Address
from rtchub.cluster.courier import Topics
from rtchub.config import Limits
from rtchub.features.voice.events import (
    AUDIENCE,
    StreamAvailable,
    StreamEnded,
    StreamListeners,
)
from rtchub.features.voice.rules import MAX_NAME, StreamInfo, Streams, stream_id_for

__all__ = ["LISTENER_INTERVAL", "VoiceService"]

LISTENER_INTERVAL: Final = 1.0


class VoiceService:
    """Live streams and who hears about them; see the module docstring."""

    def __init__(self, courier: Topics, limits: Limits, clock: Clock,
                 wall: Callable[[], float] = time.time) -> None:
        self._courier = courier
        self._clock = clock
        self._wall = wall
        self.streams = Streams(limits.voice_max_streams)
        self._listeners: dict[str, tuple[int, int]] = {}
        self._sent: dict[str, float] = {}
        self._timers: dict[str, Timer] = {}
        self.audience = 0

    # -- audience ------------------------------------------------------------------------

    def join_audience(self, conn: str) -> None:
        """``conn`` speaks voice: it hears every stream going live or ending."""
        self._courier.subscribe(AUDIENCE, conn)
        self.audience += 1

    def leave_audience(self, conn: str) -> None:
        """``conn`` is gone."""
        self._courier.unsubscribe(AUDIENCE, conn)
        self.audience -= 1

    # -- streams -------------------------------------------------------------------------

    def go_live(self, owner: Address, connection_id: str, name: str | None) -> StreamInfo:
        """The sender's answered peer is a live stream: record it and tell everyone."""
        label = (name or "").strip()[:MAX_NAME] or f"Stream {len(self.streams) + 1}"
        info = self.streams.go_live(StreamInfo(stream_id_for(connection_id), owner, label,
                                               self._clock(), self._wall()))
        self._courier.broadcast(AUDIENCE, StreamAvailable(info.stream_id, info.name,
                                                          info.started_at))
        return info

    def end(self, stream_id: str) -> StreamInfo | None:
        """The stream ended: forget it and tell everyone (once)."""
        info = self.streams.end(stream_id)
        timer = self._timers.pop(stream_id, None)
        if timer is not None:
            timer.cancel()
        self._listeners.pop(stream_id, None)
        self._sent.pop(stream_id, None)
        if info is not None:
            self._courier.broadcast(AUDIENCE, StreamEnded(stream_id))
        return info

    # -- listener counts -----------------------------------------------------------------

    def listeners_changed(self, stream_id: str, webrtc: int, mp3: int) -> None:
        """Tell the sender its audience, at most once per ``LISTENER_INTERVAL``."""
        if self.streams.get(stream_id) is None or self._listeners.get(
                stream_id, (0, 0)) == (webrtc, mp3):
            return
        self._listeners[stream_id] = (webrtc, mp3)
        if stream_id in self._timers:
            return
        wait = self._sent.get(stream_id, -LISTENER_INTERVAL) + LISTENER_INTERVAL - self._clock()
        if wait <= 0:
            self._send_count(stream_id)
        else:
            self._timers[stream_id] = self._clock.call_later(
                wait, lambda: self._send_count(stream_id))

    def listeners(self, stream_id: str) -> tuple[int, int]:
        """(WebRTC receivers, MP3 listeners) last reported for ``stream_id``."""
        return self._listeners.get(stream_id, (0, 0))

    def _send_count(self, stream_id: str) -> None:
        self._timers.pop(stream_id, None)
        info = self.streams.get(stream_id)
        if info is None:
            return
        self._sent[stream_id] = self._clock()
        webrtc, mp3 = self._listeners.get(stream_id, (0, 0))
        self._courier.deliver(info.owner, StreamListeners(stream_id, webrtc, mp3))
