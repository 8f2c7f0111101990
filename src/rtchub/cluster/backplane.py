"""The backplane protocol: shared state plus delivery to connections on other nodes.

One interface, an in-memory default (:mod:`rtchub.cluster.memory`) and, for several
nodes, a Redis implementation (:mod:`rtchub.cluster.redis_backplane`), chosen in one place
(:mod:`rtchub.cluster.factory`). The Redis class adds only I/O: the in-memory one shows
what each method means.

Besides delivery, a backplane keeps the cluster's membership: it tells the features'
sweeps (:data:`NodeSweep`) when a node is lost, so they remove what that node's
connections held, and after it reconnects to the shared store, so they remove what its
own closed connections could not (a leave refused while the store was unreachable).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rtchub.base.connection import Address
from rtchub.cluster.store import StateStore

__all__ = ["Alive", "Backplane", "ClusterView", "NodeFigures", "NodeSweep", "RemoteHandler",
           "TopicHandler"]

# (recipient on this node, event) for events other nodes address to one connection
RemoteHandler = Callable[[Address, object], None]
# (topic, event) for events other nodes broadcast to a topic
TopicHandler = Callable[[str, object], None]
# what a node reports about itself with each heartbeat (connections, rooms, ...)
NodeFigures = Mapping[str, float]
# is the connection at this address still open? (sweeps keep what is)
Alive = Callable[[Address], bool]
# a feature's sweep: remove what the connections of ``node`` held, unless ``alive``
NodeSweep = Callable[[str, Alive], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The live nodes as last seen: this node's ID, each node's figures, and whether the
    shared store is reachable now."""

    node: str
    nodes: tuple[tuple[str, NodeFigures], ...]
    connected: bool

    def total(self, figure: str) -> float:
        """``figure`` summed over every live node."""
        return sum(figures.get(figure, 0.0) for _, figures in self.nodes)


class Backplane(Protocol):
    """Shared state plus delivery to connections held by other nodes."""

    @property
    def node_id(self) -> str:
        """This node's ID, stamped on every address it hands out."""
        ...

    @property
    def store(self) -> StateStore:
        """The shared state store."""
        ...

    @property
    def healthy(self) -> bool:
        """False while a remote backplane is unreachable (readiness turns 503)."""
        ...

    def publish(self, to: Address, event: object) -> bool:
        """Send ``event`` to a connection on another node (fire and forget); False when it
        cannot be sent now (the backplane is unreachable or its outbox is full)."""
        ...

    def broadcast(self, topic: str, event: object) -> None:
        """Send ``event`` to every other node's subscribers of ``topic`` (fire and forget)."""
        ...

    def listen(self, topic: str) -> None:
        """This node has subscribers of ``topic`` now: hear other nodes' broadcasts."""
        ...

    def unlisten(self, topic: str) -> None:
        """This node has no subscriber of ``topic`` any more."""
        ...

    def on_remote(self, to_conn: RemoteHandler, to_topic: TopicHandler,
                  local: Callable[[str], bool]) -> None:
        """Register the handlers for what other nodes send to this node, and how to tell
        whether a local connection is still open."""
        ...

    def on_sweep(self, sweep: NodeSweep) -> None:
        """Register a feature's sweep (see the module docstring)."""
        ...

    def set_figures(self, read: Callable[[], NodeFigures]) -> None:
        """How to read this node's figures for the cluster view."""
        ...

    def cluster(self) -> ClusterView:
        """The live nodes and their figures, as last seen."""
        ...

    def counters(self) -> dict[str, float]:
        """The backplane's own counters (published, received, dropped, ...) for /metrics."""
        ...

    async def start(self) -> None:
        """Connect and start listening."""
        ...

    async def close(self) -> None:
        """Stop listening and release connections."""
        ...
