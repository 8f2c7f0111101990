"""The voice stream directory and its announcements (seed 002). No media, no I/O.

:class:`VoiceService` records which streams are live in the store (one directory for every
node; rules in :mod:`~rtchub.features.voice.rules`) and keeps a copy in ``streams`` that
follows the store's change feed, so greetings and lookups stay synchronous. It tells
through the courier: every voice-speaking connection subscribes to one topic and hears
``StreamAvailable`` / ``StreamEnded``; a sender hears how many listen to it on every node
(``StreamListeners``, at most once per ``LISTENER_INTERVAL``: other nodes report their
counts with ``ListenerReport``). The media of a live stream is
:mod:`~rtchub.features.voice.live`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from rtchub.base.clock import Clock, Timer
from rtchub.base.connection import Address
from rtchub.cluster.courier import Topics
from rtchub.cluster.store import StateStore
from rtchub.config import Limits
from rtchub.features.voice.events import (
    AUDIENCE,
    MEDIA,
    ListenerReport,
    StreamAvailable,
    StreamEnded,
    StreamListeners,
)
from rtchub.features.voice.rules import (
    DIRECTORY_KEY,
    MAX_NAME,
    StreamDirectory,
    StreamInfo,
    Streams,
    add_stream,
    remove_stream,
    stream_id_for,
)

__all__ = ["LISTENER_INTERVAL", "VoiceService"]

LISTENER_INTERVAL: Final = 1.0
Alive = Callable[[Address], bool]


class VoiceService:
    """Live streams and who hears about them; see the module docstring."""

    def __init__(self, courier: Topics, limits: Limits, clock: Clock, store: StateStore,
                 node: str, wall: Callable[[], float] = time.time) -> None:
        self._courier = courier
        self._clock = clock
        self._wall = wall
        self._store = store
        self.node = node
        self._max = limits.voice_max_streams
        self.streams = Streams(limits.voice_max_streams)
        # stream -> node -> (webrtc, mp3): the counts of every node, summed for the sender
        self._counts: dict[str, dict[str, tuple[int, int]]] = {}
        self._listeners: dict[str, tuple[int, int]] = {}
        self._sent: dict[str, float] = {}
        self._timers: dict[str, Timer] = {}
        self.audience = 0
        self._local: dict[str, StreamInfo] = {}   # this node's streams (put back if lost)
        # called with the IDs of streams that left the directory (live.py drops relays)
        self.on_ended: Callable[[str], None] = lambda stream_id: None
        store.follow(DIRECTORY_KEY, _DirectoryFollower(self))

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

    async def go_live(self, owner: Address, connection_id: str, name: str | None
                      ) -> StreamInfo:
        """The sender's answered peer is a live stream: record it and tell everyone."""
        label = (name or "").strip()[:MAX_NAME] or f"Stream {len(self.streams) + 1}"
        info = StreamInfo(stream_id_for(connection_id), owner, label, self._clock(),
                          self._wall())
        limit = self._max
        await self._store.transact((DIRECTORY_KEY,), lambda v: (
            {DIRECTORY_KEY: add_stream(_directory(v), info, limit)}, None))
        self._local[info.stream_id] = info
        self._courier.broadcast(AUDIENCE, StreamAvailable(info.stream_id, info.name,
                                                          info.started_at))
        return info

    async def end(self, stream_id: str) -> StreamInfo | None:
        """The stream ended: forget it and tell everyone (once)."""
        self._forget(stream_id)
        self._local.pop(stream_id, None)

        def remove(values: Mapping[str, object | None]
                   ) -> tuple[Mapping[str, object | None], StreamInfo | None]:
            directory, gone = remove_stream(_directory(values), stream_id)
            return ({DIRECTORY_KEY: directory} if gone is not None else {}), gone

        info = await self._store.transact((DIRECTORY_KEY,), remove)
        if info is not None:
            self._courier.broadcast(AUDIENCE, StreamEnded(stream_id))
        return info

    def _forget(self, stream_id: str) -> None:
        timer = self._timers.pop(stream_id, None)
        if timer is not None:
            timer.cancel()
        self._listeners.pop(stream_id, None)
        self._counts.pop(stream_id, None)
        self._sent.pop(stream_id, None)

    async def sweep_node(self, node: str, alive: Alive) -> None:
        """Streams whose sender was on ``node`` and is gone end (everyone is told)."""
        for info in self.streams.all():
            if info.owner.node == node and not alive(info.owner):
                await self.end(info.stream_id)
        for counts in self._counts.values():
            counts.pop(node, None)
        if node != self.node:
            return
        limit = self._max
        for info in list(self._local.values()):   # the store lost them: list them again
            if alive(info.owner) and self.streams.get(info.stream_id) is None:
                def put_back(values: Mapping[str, object | None], info: StreamInfo = info
                             ) -> tuple[Mapping[str, object | None], None]:
                    return {DIRECTORY_KEY: add_stream(_directory(values), info, limit)}, None

                await self._store.transact((DIRECTORY_KEY,), put_back)

    def directory_changed(self, streams: tuple[StreamInfo, ...]) -> None:
        """The store's directory changed (this node's change or another's)."""
        before = set(self.streams.ids())
        self.streams.replace(streams)
        for stream_id in before - set(self.streams.ids()):
            self._forget(stream_id)
            self.on_ended(stream_id)

    # -- listener counts -----------------------------------------------------------------

    def listeners_changed(self, stream_id: str, webrtc: int, mp3: int) -> None:
        """This node's audience of ``stream_id`` changed: tell the stream's node."""
        info = self.streams.get(stream_id)
        if info is None:
            return
        if info.owner.node != self.node:
            self._courier.deliver(Address(info.owner.node, MEDIA),
                                  ListenerReport(stream_id, self.node, webrtc, mp3))
            return
        self.listeners_reported(stream_id, self.node, webrtc, mp3)

    def listeners_reported(self, stream_id: str, node: str, webrtc: int, mp3: int) -> None:
        """A node's audience of a stream of this node; the sender hears the sum, at most
        once per ``LISTENER_INTERVAL``."""
        if self.streams.get(stream_id) is None:
            return
        counts = self._counts.setdefault(stream_id, {})
        counts[node] = (webrtc, mp3)
        total = (sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
        if self._listeners.get(stream_id, (0, 0)) == total:
            return
        self._listeners[stream_id] = total
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


def _directory(values: Mapping[str, object | None]) -> StreamDirectory | None:
    value = values.get(DIRECTORY_KEY)
    return value if isinstance(value, StreamDirectory) else None


class _DirectoryFollower:
    """Feeds the store's change feed of the directory into the service's copy."""

    __slots__ = ("_service",)

    def __init__(self, service: VoiceService) -> None:
        self._service = service

    def changed(self, key: str, value: object | None) -> None:
        if key == DIRECTORY_KEY:
            self._service.directory_changed(
                value.streams if isinstance(value, StreamDirectory) else ())

    def reset(self, items: Mapping[str, object]) -> None:
        self.changed(DIRECTORY_KEY, items.get(DIRECTORY_KEY))
