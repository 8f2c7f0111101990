"""Seed 003's quality monitor: per-participant connection quality in SFU call rooms.

A :class:`QualityMonitor` measures every monitored participant's server peer each
``interval`` seconds (default 5, ``CALL_QUALITY_INTERVAL``) on the clock it is given,
with a :class:`~rtchub.media.sfu.quality.PeerMeter` per peer, and turns each sample
into a :class:`~.quality_rules.ConnectionQuality` (score, loss, jitter, latency,
bitrate, warnings; the rules in :mod:`.quality_rules`). It keeps the latest and a
short history per participant (``history`` samples), calls the
:meth:`~QualityMonitor.on_quality_change` listeners whenever a participant's quality
reads differently from the previous one, and tells ``on_room_report`` (the call
service's ``quality`` broadcast) the whole room's qualities after each interval in
which any of them changed.

The SFU media plane monitors every participant of an SFU room from its join until it
leaves; :class:`~rtchub.calls.CallsExtension` hands the monitor out as seed 003's
``GetQualityMonitor``. One timer runs while anyone is monitored; no task is kept.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rtchub.base.clock import Clock, Timer
from rtchub.errors import PeerNotFound
from rtchub.features.calls.quality_rules import ConnectionQuality, QualityThresholds, assess
from rtchub.media.sfu import SfuPeer
from rtchub.media.sfu.quality import PeerMeter

__all__ = ["DEFAULT_HISTORY", "DEFAULT_INTERVAL", "QualityListener", "QualityMonitor",
           "RoomPeer", "RoomReport"]

log = logging.getLogger("rtchub.calls")

DEFAULT_INTERVAL = 5.0
DEFAULT_HISTORY = 120  # ten minutes at the default interval

QualityListener = Callable[[str, ConnectionQuality], None]  # (peer id, its quality)
RoomReport = Callable[[str, tuple[ConnectionQuality, ...]], None]  # (room, everyone's)


class RoomPeer(Protocol):
    """A peer of the Python API in an SFU room (``ServerPeer``)."""

    @property
    def room_id(self) -> str:
        """Its room."""
        ...

    @property
    def server_peer(self) -> SfuPeer:
        """The server's peer underneath."""
        ...


@dataclass(slots=True)
class _Watched:
    room: str
    meter: PeerMeter
    history: deque[ConnectionQuality]
    latest: ConnectionQuality | None = None


class QualityMonitor:
    """Measures participants' connections every ``interval`` seconds (see the module doc).

    Participants are known by ``(room, peer id)``; the methods that take a ``peer_id``
    alone accept ``room`` to tell apart two rooms' participants of the same id.
    """

    def __init__(self, clock: Clock, *, interval: float = DEFAULT_INTERVAL,
                 thresholds: QualityThresholds | None = None,
                 history: int = DEFAULT_HISTORY,
                 wall: Callable[[], float] = time.time) -> None:
        if not interval > 0:
            raise ValueError(f"the quality interval must be positive, got {interval}")
        if history < 1:
            raise ValueError(f"the quality history keeps at least one sample, got {history}")
        self.interval = interval
        self.thresholds = thresholds or QualityThresholds()
        self._clock = clock
        self._wall = wall
        self._history = history
        self._watched: dict[tuple[str, str], _Watched] = {}
        self._listeners: list[QualityListener] = []
        self._timer: Timer | None = None
        self.on_room_report: RoomReport | None = None
        self.closed = False

    # -- seed 003's API ----------------------------------------------------------------

    def monitor(self, peer: SfuPeer | RoomPeer, room: str | None = None) -> None:
        """Start measuring ``peer`` (its participant id is the peer id): a server peer,
        or the Python API's peer of an SFU room (its room is known then); measuring it
        already keeps its history."""
        if not isinstance(peer, SfuPeer):
            room = peer.room_id if room is None else room
            peer = peer.server_peer
        room = "" if room is None else room
        key = (room, peer.participant_id)
        found = self._watched.get(key)
        if found is not None and found.meter.peer is peer:
            return
        self._watched[key] = _Watched(room, PeerMeter(peer, self._clock()),
                                      deque(maxlen=self._history))
        self._arm()

    def get_quality(self, peer_id: str, room: str | None = None) -> ConnectionQuality | None:
        """The latest quality of ``peer_id`` (None until its first interval ends);
        :class:`~rtchub.errors.PeerNotFound` when it is not monitored."""
        return self._find(peer_id, room).latest

    def get_history(self, peer_id: str, room: str | None = None) -> list[ConnectionQuality]:
        """Its last qualities, oldest first (at most ``history`` of them)."""
        return list(self._find(peer_id, room).history)

    def on_quality_change(self, listener: QualityListener) -> Callable[[], None]:
        """Call ``listener(peer_id, quality)`` whenever a participant's quality changes;
        returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def stop(self, peer_id: str, room: str | None = None) -> None:
        """Stop measuring ``peer_id`` and forget its history (no-op if not monitored)."""
        try:
            watched = self._find(peer_id, room)
        except PeerNotFound:
            return
        self._watched.pop((watched.room, peer_id), None)
        if not self._watched:
            self._disarm()

    # -- reading ----------------------------------------------------------------------

    def peers(self, room: str | None = None) -> list[tuple[str, str]]:
        """(room, peer id) of everyone monitored (in ``room`` only, when given)."""
        return [key for key in self._watched if room is None or key[0] == room]

    def room_quality(self, room: str) -> list[ConnectionQuality]:
        """The latest quality of everyone measured in ``room`` so far."""
        return [w.latest for (r, _), w in self._watched.items()
                if r == room and w.latest is not None]

    def recent(self, peer_id: str, room: str | None = None
               ) -> tuple[float | None, float | None]:
        """Between intervals: the loss (%) ``peer_id``'s client reported last about what
        it receives, and the last round-trip time (ms); None where unknown. Adaptive
        quality reads this to step down as soon as a report shows trouble."""
        return self._find(peer_id, room).meter.recent()

    def snapshot(self, room: str | None = None, history: bool = True
                 ) -> dict[str, dict[str, list[dict[str, object]]]]:
        """Plain data for a dashboard: room -> peer id -> its qualities as dicts, oldest
        first (only the latest when not ``history``; empty before the first)."""
        out: dict[str, dict[str, list[dict[str, object]]]] = {}
        for (r, peer_id), watched in self._watched.items():
            if room is not None and r != room:
                continue
            kept = list(watched.history) if history else (
                [] if watched.latest is None else [watched.latest])
            out.setdefault(r, {})[peer_id] = [q.to_dict() for q in kept]
        return out

    def room_figures(self) -> dict[str, dict[str, float]]:
        """Per room (as Prometheus gauges read them): mean ``score``, lowest
        ``score_min``, mean ``packet_loss`` (%), ``jitter`` and ``rtt`` (s), summed
        ``bitrate`` (bits/s) and ``peers`` measured. Rooms nobody was measured in yet
        are left out, and a room is gone once its participants are."""
        by_room: dict[str, list[ConnectionQuality]] = {}
        for (room, _), watched in self._watched.items():
            if watched.latest is not None:
                by_room.setdefault(room, []).append(watched.latest)
        out: dict[str, dict[str, float]] = {}
        for room, found in by_room.items():
            n = len(found)
            rtts = [q.latency for q in found if q.latency is not None]
            figures = {
                "score": sum(q.score for q in found) / n,
                "score_min": float(min(q.score for q in found)),
                "packet_loss": sum(q.packet_loss for q in found) / n,
                "jitter": sum(q.jitter for q in found) / n / 1000,
                "bitrate": sum(q.bitrate_kbps for q in found) * 1000,
                "peers": float(n),
            }
            if rtts:
                figures["rtt"] = sum(rtts) / len(rtts) / 1000
            out[room] = figures
        return out

    # -- measuring --------------------------------------------------------------------

    def measure(self) -> list[ConnectionQuality]:
        """Measure everyone now (the timer does this every interval); returns the
        qualities that changed, after telling the listeners and the room reports."""
        now, at = self._clock(), self._wall()
        changed: list[ConnectionQuality] = []
        rooms: set[str] = set()
        for key, watched in list(self._watched.items()):
            peer = watched.meter.peer
            if peer.closed:
                continue  # the call service stops it when the participant leaves
            quality = assess(key[1], watched.room, watched.meter.sample(now), self.thresholds,
                             at)
            watched.history.append(quality)
            previous, watched.latest = watched.latest, quality
            if quality.same_as(previous):
                continue
            changed.append(quality)
            rooms.add(watched.room)
            for listener in list(self._listeners):
                try:
                    listener(key[1], quality)
                except Exception:
                    log.exception("a quality listener failed")
        report = self.on_room_report
        if report is not None:
            for room in sorted(rooms):
                try:
                    report(room, tuple(self.room_quality(room)))
                except Exception:
                    log.exception("the quality report of room %r failed", room)
        return changed

    def _tick(self) -> None:
        self._timer = None
        if self.closed or not self._watched:
            return
        self._arm()
        self.measure()

    def _arm(self) -> None:
        if self._timer is None and not self.closed:
            self._timer = self._clock.call_later(self.interval, self._tick)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        """Stop measuring anyone (the server is stopping)."""
        self.closed = True
        self._disarm()
        self._watched.clear()
        self._listeners.clear()

    def _find(self, peer_id: str, room: str | None) -> _Watched:
        if room is not None:
            found = self._watched.get((room, peer_id))
        else:
            matches = [w for (r, p), w in self._watched.items() if p == peer_id]
            found = matches[0] if len(matches) == 1 else None
            if len(matches) > 1:
                raise PeerNotFound(f"{peer_id[:80]!r} is monitored in several rooms: name "
                                   f"the room")
        if found is None:
            raise PeerNotFound(f"{peer_id[:80]!r} is not monitored"
                               + ("" if room is None else f" in room {room!r}"))
        return found
