"""The Hub: rtchub's engine, usable from Python without any HTTP server.

It composes the backplane, the courier, the core services and the dialects
spoken on each WebSocket endpoint, owns their background tasks, and keeps the
lifecycle (starting -> ready -> draining -> closed) that readiness reports.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Sequence

from rtchub.base.changes import Changes
from rtchub.base.metrics import Stats
from rtchub.base.ratelimit import FixedWindow
from rtchub.base.tasks import TaskOwner
from rtchub.cluster.backplane import Backplane, LocalCourier
from rtchub.cluster.factory import create_backplane
from rtchub.config import Config
from rtchub.errors import CapacityError, NotFound, OriginNotAllowed, RateLimited
from rtchub.features.rooms.handler import RoomsDialect
from rtchub.features.rooms.service import Rooms
from rtchub.net.connection import CLOSE_GOING_AWAY, Connection, SessionFactory
from rtchub.net.session import Dialect, WsSession

__all__ = ["Hub", "Lifecycle"]


class Lifecycle(enum.Enum):
    """Where the hub is in its life; transitions are checked."""

    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    CLOSED = "closed"


_NEXT: dict[Lifecycle, frozenset[Lifecycle]] = {
    Lifecycle.STARTING: frozenset({Lifecycle.READY, Lifecycle.DRAINING, Lifecycle.CLOSED}),
    Lifecycle.READY: frozenset({Lifecycle.DRAINING, Lifecycle.CLOSED}),
    Lifecycle.DRAINING: frozenset({Lifecycle.CLOSED}),
    Lifecycle.CLOSED: frozenset(),
}


class Hub:
    """Core services over a backplane, with the dialects of each WebSocket endpoint.

    ``endpoints`` maps a WebSocket path to the dialect names spoken there; later
    features register theirs with :meth:`add_dialect`.
    """

    def __init__(self, config: Config, *, backplane: Backplane | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.started_at = clock()
        self.stats = Stats()
        self.backplane = backplane if backplane is not None else create_backplane(config)
        # poked whenever observable state changes (tasks end, connections go, media moves)
        self.changes = Changes()
        self.tasks = TaskOwner("hub", self.changes.notify)
        self.courier = LocalCourier(self.backplane)
        self.rooms = Rooms(self.backplane.store, self.courier, config.limits)
        self.connections: dict[str, Connection] = {}
        self._drained = asyncio.Event()
        self.ws_upgrades = FixedWindow(config.limits.ws_rate_per_min)
        self.http_requests = FixedWindow(config.limits.http_rate_per_min)
        # seed 002's JSON metrics view; the voice feature installs it
        self.json_metrics: Callable[[], dict[str, object]] | None = None
        self._dialects: dict[str, Dialect] = {}
        self.endpoints: dict[str, list[str]] = {}
        self._state = Lifecycle.STARTING
        self.add_dialect("rooms", RoomsDialect(self.rooms, self.courier, self.tasks, self.stats),
                         ("/ws", "/ws/rooms"))
        self.stats.add_gauges("rtchub_rooms", "Rooms open now.",
                              lambda: {"": float(self.rooms.counts()[0])})
        self.stats.add_gauges("rtchub_room_members", "Room members now.",
                              lambda: {"": float(self.rooms.counts()[1])})

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def state(self) -> Lifecycle:
        """The current lifecycle state."""
        return self._state

    def _move(self, to: Lifecycle) -> None:
        if to not in _NEXT[self._state]:
            raise RuntimeError(f"hub lifecycle: expected one of "
                               f"{sorted(s.value for s in _NEXT[self._state])}, got {to.value}")
        self._state = to

    @property
    def ready(self) -> bool:
        """Ready to take traffic: started, not draining, backplane reachable."""
        return self._state is Lifecycle.READY and self.backplane.healthy

    async def start(self) -> None:
        """Connect the backplane; the hub is then ready."""
        await self.backplane.start()
        self._move(Lifecycle.READY)

    def drain(self) -> None:
        """Stop being ready and tell every WebSocket client the server is going away."""
        if self._state in (Lifecycle.DRAINING, Lifecycle.CLOSED):
            return
        self._move(Lifecycle.DRAINING)
        for conn in list(self.connections.values()):
            conn.close(CLOSE_GOING_AWAY, "server shutting down")

    async def close(self) -> None:
        """Cancel owned tasks and release the backplane."""
        if self._state is Lifecycle.CLOSED:
            return
        if self._state is not Lifecycle.DRAINING:
            self.drain()
        self._move(Lifecycle.CLOSED)
        await self.tasks.close()
        await self.backplane.close()

    async def wait_drained(self, timeout: float) -> bool:
        """Wait until every WebSocket connection is gone; False on timeout."""
        if not self.connections:
            return True
        self._drained.clear()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def track(self, conn: Connection) -> None:
        """Count a connection served outside the WebSocket endpoints (Socket.IO) in drains."""
        self.connections[conn.id] = conn

    def untrack(self, conn_id: str) -> None:
        """Forget a connection given to :meth:`track` once it is gone."""
        self._forget(conn_id)

    def _forget(self, conn_id: str) -> None:
        self.connections.pop(conn_id, None)
        self.changes.notify()
        if not self.connections:
            self._drained.set()

    def uptime(self) -> float:
        """Seconds since the hub was built."""
        return self.clock() - self.started_at

    # -- WebSocket endpoints -------------------------------------------------------------

    def add_dialect(self, name: str, dialect: Dialect, paths: Sequence[str]) -> None:
        """Speak ``dialect`` on each of ``paths`` (a path may speak several dialects)."""
        self._dialects[name] = dialect
        for path in paths:
            self.endpoints.setdefault(path, []).append(name)

    def admit(self, path: str, origin: str | None, remote: str) -> SessionFactory:
        """Decide a WebSocket upgrade: the session factory, or an error to answer with."""
        names = self.endpoints.get(path)
        if names is None:
            raise NotFound(f"no WebSocket endpoint at {path[:80]!r}")
        if not self.config.origins.allows(origin):
            self.stats.http_rejections["origin"] += 1
            raise OriginNotAllowed(f"origin {origin!r} is not allowed")
        retry = self.ws_upgrades.hit(remote, self.clock())
        if retry is not None:
            self.stats.http_rejections["ws_rate"] += 1
            raise RateLimited(f"too many WebSocket upgrades from {remote}", retry)
        if self._state is not Lifecycle.READY:
            raise CapacityError("server is not accepting connections (starting or draining)")
        dialects = [self._dialects[n] for n in names]
        return lambda conn: self._open(conn, dialects)

    def open_session(self, conn: Connection, dialects: Sequence[Dialect]) -> WsSession:
        """Track ``conn`` (drained on shutdown) and start a session speaking ``dialects``:
        for features whose dialect is built per connection (pairing binds appID and side)."""
        return self._open(conn, dialects)

    def _open(self, conn: Connection, dialects: Sequence[Dialect]) -> WsSession:
        self.connections[conn.id] = conn
        return _TrackedSession(conn, dialects, self.stats, self._forget)


class _TrackedSession(WsSession):
    """A WsSession that removes its connection from the hub's table when it ends."""

    __slots__ = ("_forget",)

    def __init__(self, conn: Connection, dialects: Sequence[Dialect], stats: Stats,
                 forget: Callable[[str], None]) -> None:
        super().__init__(conn, dialects, stats)
        self._forget = forget

    def on_close(self) -> None:
        self._forget(self._conn.id)
        super().on_close()
