"""The Hub: what every feature shares at run time, and the server's lifecycle.

It holds the configuration, the clock, the counters, the backplane and its courier (the
one delivery path), the owner of every background task, the change notifier tests and
shutdown wait on, the table of open connections that a drain waits for, and the
admission checks every connection passes (origins, per-IP rate limits, lifecycle). It
knows no feature: features are built from it in :mod:`rtchub.app`.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import Protocol

from rtchub.base.changes import Changes
from rtchub.base.clientip import client_ip, ip_key
from rtchub.base.clock import Clock, LoopClock, WallClock
from rtchub.base.metrics import Stats
from rtchub.base.ratelimit import Concurrent, FixedWindow
from rtchub.base.tasks import TaskOwner
from rtchub.cluster.backplane import Backplane, NodeFigures
from rtchub.cluster.codec import Codec
from rtchub.cluster.courier import Courier
from rtchub.cluster.factory import create_backplane
from rtchub.cluster.placement import RECORDS as PLACEMENT_RECORDS
from rtchub.config import Config
from rtchub.errors import CapacityError, OriginNotAllowed, RateLimited

__all__ = ["NODE_FIGURES", "Closable", "Drainable", "Hub", "Lifecycle"]

# the gauges each node reports with its heartbeat (summed over the cluster in /api/status)
NODE_FIGURES = {"rtchub_match_sockets": "match_sockets",
                "rtchub_pair_sides_connected": "pair_sides",
                "rtchub_voice_receivers": "voice_receivers",
                "rtchub_mp3_listeners": "mp3_listeners"}


_CONNS_RETRY = 5.0  # Retry-After for a refusal by MAX_CONNS_PER_IP (no window to wait for)


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


class Closable(Protocol):
    """A connection as the drain sees it: something with an id to close with 1001."""

    @property
    def id(self) -> str:
        """The connection's id."""
        ...

    def close(self, code: int, reason: str) -> None:
        """Close it with ``code`` and ``reason``."""
        ...


class Drainable:
    """A :class:`Closable` made of an id and a close function (for a connection that is
    not itself one)."""

    __slots__ = ("close", "id")

    def __init__(self, conn_id: str, close: Callable[[int, str], None]) -> None:
        self.id = conn_id
        self.close = close


class Hub:
    """Shared run-time state of one rtchub process; see the module docstring."""

    def __init__(self, config: Config, *, backplane: Backplane | None = None,
                 clock: Clock | None = None) -> None:
        self.config = config
        if clock is None:   # nodes that share state compare instants: Unix time
            clock = WallClock() if config.redis_url else LoopClock()
        self.clock: Clock = clock
        self.started_at = self.clock()
        self.stats = Stats()
        # every type a feature stores or sends registers here (features' setup)
        self.codec = Codec()
        self.codec.register(*PLACEMENT_RECORDS)   # call rooms' placement (cluster/placement.py)
        self.backplane = backplane if backplane is not None else create_backplane(
            config, self.clock, self.codec)
        self.backplane.set_figures(self.figures)
        self._cluster_metrics()
        # poked whenever observable state changes (tasks end, connections go, media moves)
        self.changes = Changes()
        self.tasks = TaskOwner("hub", self.changes.notify)
        self.courier = Courier(self.backplane)
        self.connections: dict[str, Closable] = {}
        self._drained = asyncio.Event()
        self.ws_upgrades = FixedWindow(config.limits.ws_rate_per_min)
        self.http_requests = FixedWindow(config.limits.http_rate_per_min)
        # long-lived connections per client IP (WebSockets, Socket.IO sessions)
        self.ip_connections = Concurrent(config.limits.max_conns_per_ip)
        self._state = Lifecycle.STARTING

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
        """Stop being ready and tell every connection the server is going away."""
        if self._state in (Lifecycle.DRAINING, Lifecycle.CLOSED):
            return
        self._move(Lifecycle.DRAINING)
        for conn in list(self.connections.values()):
            conn.close(1001, "server shutting down")

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
        """Wait until every connection is gone; False on timeout."""
        if not self.connections:
            return True
        self._drained.clear()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def uptime(self) -> float:
        """Seconds since the hub was built."""
        return self.clock() - self.started_at

    def figures(self) -> NodeFigures:
        """What this node reports to the cluster: its connections and the load gauges."""
        figures = {"connections": float(self.stats.connections_open)}
        for name, value in self.stats.gauge_values(NODE_FIGURES).items():
            key = NODE_FIGURES.get(name)
            if key is not None:
                figures[key] = value
        return figures

    def _cluster_metrics(self) -> None:
        stats, backplane = self.stats, self.backplane
        stats.add_gauges("rtchub_cluster_nodes", "Live nodes in the cluster (1 without Redis).",
                         lambda: {"": float(len(backplane.cluster().nodes))})
        stats.add_gauges("rtchub_cluster_connections",
                         "WebSocket connections open over every live node.",
                         lambda: {"": backplane.cluster().total("connections")})
        stats.add_gauges("rtchub_backplane_up",
                         "1 while the backplane is reachable (always 1 without Redis).",
                         lambda: {"": float(backplane.healthy)})
        stats.add_counters("rtchub_backplane_events", "Backplane events: messages published "
                           "and received, events dropped, reconnects, store transactions and "
                           "conflicts, lost nodes swept.", "event", backplane.counters)

    def cluster_status(self) -> dict[str, object]:
        """This node and the cluster (``/api/status``): other nodes' figures are as of their
        last heartbeat (at most ``CLUSTER_NODE_TTL / 3`` old)."""
        view = self.backplane.cluster()
        mine = self.figures()
        totals: dict[str, float] = dict(mine)   # this node now, the others as last reported
        for node, figures in view.nodes:
            if node != view.node:
                for key, value in figures.items():
                    totals[key] = totals.get(key, 0.0) + value
        return {
            "node": {"id": view.node, **{k: round(v) for k, v in mine.items()}},
            "cluster": {"backplane": "memory" if not self.config.redis_url else "redis",
                        "connected": view.connected, "nodes": len(view.nodes),
                        **{k: round(v) for k, v in totals.items()}},
        }

    # -- connections ---------------------------------------------------------------------

    def track(self, conn: Closable) -> None:
        """Count a connection in drains (closed with 1001 when the server stops)."""
        self.connections[conn.id] = conn

    def untrack(self, conn_id: str) -> None:
        """Forget a connection given to :meth:`track` once it is released."""
        self.connections.pop(conn_id, None)
        self.changes.notify()
        if not self.connections:
            self._drained.set()

    def client_ip(self, peer_ip: str | None, forwarded_for: str | None) -> str:
        """The client's IP: the peer, or what a trusted proxy says (``TRUST_PROXY``)."""
        return client_ip(peer_ip, forwarded_for, self.config.trusted_proxies)

    def admit_upgrade(self, origin: str | None, remote: str) -> None:
        """The checks every long-lived connection passes: origin, per-IP rate, per-IP
        connections, lifecycle. Per-IP limits count an IPv6 /64 as one IP."""
        if not self.config.origins.allows(origin):
            self.stats.http_rejections["origin"] += 1
            raise OriginNotAllowed(f"origin {origin!r} is not allowed")
        key = ip_key(remote)
        if self.ip_connections.full(key):
            self.stats.http_rejections["conns_per_ip"] += 1
            raise RateLimited(f"{remote} holds {self.ip_connections.limit} connections "
                              "already (MAX_CONNS_PER_IP)", _CONNS_RETRY)
        retry = self.ws_upgrades.hit(key, self.clock())
        if retry is not None:
            self.stats.http_rejections["ws_rate"] += 1
            raise RateLimited(f"too many WebSocket upgrades from {remote}", retry)
        if self._state is not Lifecycle.READY:
            raise CapacityError("server is not accepting connections (starting or draining)")

    def connection_opened(self, remote: str) -> None:
        """A connection admitted by :meth:`admit_upgrade` is open: it counts against its
        IP until :meth:`connection_closed`."""
        self.ip_connections.add(ip_key(remote))

    def connection_closed(self, remote: str) -> None:
        """The connection counted by :meth:`connection_opened` is gone."""
        self.ip_connections.remove(ip_key(remote))
        self.changes.notify()
