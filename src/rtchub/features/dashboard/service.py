"""The dashboard's one job: a snapshot of the node and the cluster, as JSON values.

:meth:`Dashboard.snapshot` reads every source once (see :mod:`.ports`) and merges the
rooms of the rooms protocol with the call rooms they carry, so one room is one entry with
its topology, its participants, its SFU tracks (with their simulcast layers when known),
who receives what, and each peer's recent quality samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from rtchub.features.dashboard.ports import (
    CallRoomView,
    NoLayers,
    NoQuality,
    NoSources,
    QualityHistory,
    Sources,
    TrackLayers,
)
from rtchub.features.dashboard.rules import HISTORY_SECONDS, recent_samples

__all__ = ["Dashboard"]


class Dashboard:
    """Builds snapshots; ``cluster`` gives the node and cluster figures (``/api/status``'s
    ``node`` and ``cluster``), ``wall`` the Unix time."""

    def __init__(self, cluster: Callable[[], Mapping[str, object]],
                 wall: Callable[[], float]) -> None:
        self.sources: Sources = NoSources()
        self.quality: QualityHistory = NoQuality()
        self.layers: TrackLayers = NoLayers()
        self._cluster = cluster
        self._wall = wall

    async def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON values."""
        now = self._wall()
        calls = {room.id: room for room in self.sources.call_rooms()}
        rooms: list[dict[str, Any]] = []
        for mesh in self.sources.mesh_rooms():
            call = calls.pop(mesh.id, None)
            rooms.append(self._room(mesh.id, mesh.members, call, now))
        for call in calls.values():   # call rooms created from Python, nobody in them
            rooms.append(self._room(call.id, (), call, now))
        rooms.sort(key=lambda r: str(r["id"]))
        match = await self.sources.match()
        return {
            "at": now,
            "history_seconds": HISTORY_SECONDS,
            **dict(self._cluster()),
            "rooms": rooms,
            "streams": [asdict(s) for s in self.sources.streams()],
            "pairs": [asdict(p) for p in await self.sources.pairs()],
            "match": asdict(match),
        }

    def _room(self, room_id: str, members: tuple[str, ...], call: CallRoomView | None,
              now: float) -> dict[str, Any]:
        if call is None:
            return {"id": room_id, "topology": "mesh", "call": False, "members": list(members),
                    "participants": [], "tracks": [], "speaker": None, "recording": "idle",
                    "quality": {}}
        participants = []
        for p in call.participants:
            receives = []
            for track_id in p.subscriptions:
                receives.append({"track_id": track_id, "quality": p.qualities.get(track_id),
                                 "layer": self.layers.forwarded_layer(call.id, track_id, p.id)})
            participants.append({"id": p.id, "display_name": p.display_name, "audio": p.audio,
                                 "video": p.video, "screen": p.screen,
                                 "joined_at": p.joined_at, "receives": receives})
        tracks = [{**asdict(t), "layers": [dict(x) for x in
                                           self.layers.track_layers(call.id, t.track_id)],
                   "subscribers": sum(t.track_id in p.subscriptions
                                      for p in call.participants)}
                  for t in call.tracks]
        return {"id": room_id, "topology": call.topology, "call": True,
                "members": list(members) or [p.id for p in call.participants],
                "participants": participants, "tracks": tracks, "speaker": call.speaker,
                "recording": call.recording,
                "quality": recent_samples(self.quality.quality_history(call.id), now)}
