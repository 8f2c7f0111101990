"""Node liveness on Redis: heartbeats with a TTL, the cluster view, sweeping lost nodes.

Every ``ttl / 3`` seconds a node runs one Lua script that stamps it in the sorted set
``<prefix>:nodes`` with Redis's own clock (so nodes' clocks may disagree), stores its
figures under a key that expires with the TTL, and returns the live nodes' figures and
the nodes whose last heartbeat is older than the TTL. A lost node is swept by whichever
node takes its lease first (``SET NX PX``): each feature's sweep removes what that node's
connections held, then the node is dropped from the set. A sweeper that dies mid-way
leaves the node in the set, and another sweeps it when the lease expires; sweeps are
idempotent. A node's death is therefore noticed within ``ttl`` plus one heartbeat
interval (``CLUSTER_NODE_TTL``, 15 s by default: at most 20 s).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import orjson
from redis.asyncio import Redis

from rtchub.base.connection import Address
from rtchub.base.tasks import TaskOwner
from rtchub.cluster.backplane import ClusterView, NodeFigures, NodeSweep
from rtchub.cluster.keys import KeyLayout

__all__ = ["Membership"]

log = logging.getLogger("rtchub.cluster")

# KEYS: nodes zset, this node's info key. ARGV: node, ttl ms, figures JSON, info prefix.
# Returns {live nodes..., '', their figures (JSON or false)..., '', lost nodes...}
_BEAT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - ttl, '+inf')
local lost = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - ttl))
local out = {}
for _, n in ipairs(live) do table.insert(out, n) end
table.insert(out, '')
for _, n in ipairs(live) do
  table.insert(out, redis.call('GET', ARGV[4] .. n) or '')
end
table.insert(out, '')
for _, n in ipairs(lost) do table.insert(out, n) end
return out
"""


def _never(address: Address) -> bool:
    return False


class Membership:
    """One node's heartbeat, its view of the cluster, and the sweeps of lost nodes."""

    def __init__(self, client: Redis, layout: KeyLayout, node: str, ttl: float,
                 tasks: TaskOwner) -> None:
        self._client = client
        self._layout = layout
        self._node = node
        self._ttl = ttl
        self._tasks = tasks
        self._beat = client.register_script(_BEAT)
        self._figures: Callable[[], NodeFigures] = dict
        self.sweeps: list[NodeSweep] = []
        self._sweeping: set[str] = set()
        self.view = ClusterView(node, (), False)
        self.nodes_lost = 0

    @property
    def interval(self) -> float:
        """Seconds between heartbeats."""
        return self._ttl / 3

    def set_figures(self, read: Callable[[], NodeFigures]) -> None:
        """How to read this node's figures."""
        self._figures = read

    async def beat(self) -> None:
        """One heartbeat: stamp this node, refresh the view, start sweeping lost nodes.
        Raises redis's connection errors."""
        figures = orjson.dumps(dict(self._figures()))
        reply: list[Any] = await self._beat(
            keys=[self._layout.nodes, self._layout.node_info(self._node)],
            args=[self._node, max(1, round(self._ttl * 1000)), figures,
                  self._layout.node_info("")])
        texts = [r.decode() if isinstance(r, bytes) else str(r) for r in reply]
        first = texts.index("")
        live = texts[:first]
        infos = texts[first + 1:first + 1 + len(live)]
        lost = texts[first + 2 + len(live):]
        nodes = []
        for node, info in zip(live, infos, strict=True):
            try:
                data = orjson.loads(info) if info else {}
            except orjson.JSONDecodeError:
                data = {}
            nodes.append((node, {k: float(v) for k, v in data.items()
                                 if isinstance(v, int | float)}))
        before = {node for node, _ in self.view.nodes}
        self.view = ClusterView(self._node, tuple(sorted(nodes)), True)
        if set(live) != before:
            log.info("cluster: %d nodes live (%s)", len(live), ", ".join(sorted(live)))
        for node in lost:
            if node != self._node and node not in self._sweeping:
                self._sweeping.add(node)
                try:
                    self._tasks.spawn(self._sweep_lost(node), name=f"sweep-{node}")
                except RuntimeError:
                    self._sweeping.discard(node)

    def disconnected(self) -> None:
        """Redis is unreachable: the view says so (the last figures stay)."""
        self.view = ClusterView(self._node, self.view.nodes, False)

    async def _sweep_lost(self, node: str) -> None:
        try:
            lease = self._layout.reap_lease(node)
            if not await self._client.set(lease, self._node, nx=True,
                                          px=max(1, round(self._ttl * 2000))):
                return
            log.warning("node %s is lost (no heartbeat for %gs): sweeping what it held",
                        node, self._ttl)
            if not await self.run_sweeps(node, _never):
                return      # the lease expires and a node tries again
            await self._client.zrem(self._layout.nodes, node)
            await self._client.delete(self._layout.node_info(node))
            self.nodes_lost += 1
            log.warning("swept lost node %s", node)
        finally:
            self._sweeping.discard(node)

    async def run_sweeps(self, node: str, alive: Callable[[Address], bool]) -> bool:
        """Run every feature's sweep for ``node``; one failing does not stop the others.
        False when one failed."""
        ok = True
        for sweep in self.sweeps:
            try:
                await sweep(node, alive)
            except Exception:
                ok = False
                log.exception("a sweep of node %s failed", node)
        return ok

    async def leave(self) -> None:
        """A clean shutdown: drop this node from the set (its sweeps already ran as its
        connections closed)."""
        await self._client.zrem(self._layout.nodes, self._node)
        await self._client.delete(self._layout.node_info(self._node))
