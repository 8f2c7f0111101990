"""The dashboard's view of every feature: the composition root's read-only glue.

Features never import each other, so the dashboard declares what it reads
(:mod:`rtchub.features.dashboard.ports`) and this module, beside :mod:`rtchub.app`,
implements it over the rooms, call-room, voice, pairing and match services of one app.
Nothing here changes state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web

from rtchub.features.calls.live import SfuMedia
from rtchub.features.calls.routes import CALL_MEDIA, CALLS
from rtchub.features.dashboard.ports import (
    CallParticipant,
    CallRoomView,
    CallTrack,
    MatchView,
    MeshRoom,
    PairView,
    StreamView,
)
from rtchub.features.dashboard.routes import DASHBOARD
from rtchub.features.dashboard.rules import QualitySample
from rtchub.features.match.routes import MATCH
from rtchub.features.pairing import rules as pairing_rules
from rtchub.features.pairing.routes import PAIRING
from rtchub.features.rooms.routes import ROOMS
from rtchub.features.voice.http import VOICE

__all__ = ["AppSources", "CallLayers", "CallQuality", "wire_dashboard"]

MAX_PAIRS = 500        # a page lists at most this many pairs (the newest)
MAX_QUEUE_NAMES = 100  # and this many waiting users


class AppSources:
    """:class:`~rtchub.features.dashboard.ports.Sources` over one app's features."""

    def __init__(self, app: web.Application) -> None:
        self._rooms = app[ROOMS]
        self._calls = app[CALLS]
        self._voice = app[VOICE]
        self._pairing = app[PAIRING]
        self._match = app[MATCH].matchmaker

    def mesh_rooms(self) -> Sequence[MeshRoom]:
        """Rooms of the rooms protocol on this node."""
        return [MeshRoom(r, self._rooms.members(r)) for r in self._rooms.room_ids()]

    def call_rooms(self) -> Sequence[CallRoomView]:
        """Call rooms on this node."""
        views = []
        for room in self._calls.rooms():
            people = tuple(
                CallParticipant(p.id, p.display_name, p.audio, p.video, p.screen, p.joined_at,
                                tuple(sorted(p.subscriptions)), dict(p.qualities))
                for p in room.participants.values())
            tracks = tuple(CallTrack(t.track_id, t.publisher, t.kind, t.source, t.muted)
                           for t in room.tracks.values())
            views.append(CallRoomView(room.id, room.topology.value, people, tracks,
                                      room.speaker, room.recording.state))
        return views

    def streams(self) -> Sequence[StreamView]:
        """Live voice streams and their listeners."""
        out = []
        for info in self._voice.streams.all():
            webrtc, mp3 = self._voice.listeners(info.stream_id)
            out.append(StreamView(info.stream_id, info.name, info.started_at, webrtc, mp3))
        return out

    async def pairs(self) -> Sequence[PairView]:
        """Live pairings (the newest :data:`MAX_PAIRS`)."""
        store = self._pairing.store
        apps = await store.get(pairing_rules.APPS_KEY)
        ids = list(apps)[:MAX_PAIRS] if isinstance(apps, pairing_rules.Chain) else []
        out = []
        for app_id in ids:
            pair = await store.get(pairing_rules.app_key(app_id))
            if not isinstance(pair, pairing_rules.Pair):
                continue
            inboxes = pair.inboxes
            out.append(PairView(app_id, self._pairing.wall_time(pair.expires_at),
                                pair.conns[0] is not None, pair.conns[1] is not None,
                                sum(len(i.items) for i in inboxes),
                                sum(i.size for i in inboxes)))
        return out

    async def match(self) -> MatchView:
        """The match queue."""
        status = await self._match.status(MAX_QUEUE_NAMES)
        return MatchView(status.queue_users, status.queue_size, status.rooms_active,
                         status.rooms_total)


class CallQuality:
    """:class:`~rtchub.features.dashboard.ports.QualityHistory` from the call rooms'
    quality monitor."""

    def __init__(self, media: SfuMedia) -> None:
        self._media = media

    def quality_history(self, room: str) -> Mapping[str, Sequence[QualitySample]]:
        """Each monitored peer's samples in ``room``, oldest first."""
        monitor = self._media.quality
        if monitor is None:
            return {}
        return monitor.snapshot(room).get(room, {})


class CallLayers:
    """:class:`~rtchub.features.dashboard.ports.TrackLayers` from the SFU's uplinks and
    each subscriber's layer switch."""

    def __init__(self, media: SfuMedia, stale_after: float = 1.0) -> None:
        self._media = media
        self._stale_after = stale_after

    def track_layers(self, room: str, track_id: str) -> list[dict[str, object]]:
        """The publisher's layers, lowest first (none for a one-layer track)."""
        uplink = self._media.track_uplink(room, track_id)
        if uplink is None or not uplink.simulcast:
            return []
        now = uplink.clock()
        return [{"rid": layer.rid, "width": None, "height": None,
                 "kbps": round(layer.bitrate / 1000),
                 "active": layer.live(now, self._stale_after)} for layer in uplink.layers]

    def forwarded_layer(self, room: str, track_id: str, subscriber: str) -> str | None:
        """The rid ``subscriber`` gets now."""
        downtrack = self._media.downtrack(room, subscriber, track_id)
        if downtrack is None or downtrack.layers is None or not downtrack.uplink.simulcast:
            return None
        current = downtrack.layers.current
        return None if current is None else downtrack.uplink.layers[current].rid


def wire_dashboard(app: web.Application) -> None:
    """Give the dashboard (when it is on) its sources."""
    dashboard = app.get(DASHBOARD)
    if dashboard is not None:
        dashboard.sources = AppSources(app)
        media = app[CALL_MEDIA]
        dashboard.quality = CallQuality(media)
        dashboard.layers = CallLayers(media)
