"""The backplane protocol: shared state plus delivery to connections on other nodes.

One interface, an in-memory default (:mod:`rtchub.cluster.memory`) and, for several
nodes, a Redis implementation, chosen in one place (:mod:`rtchub.cluster.factory`). The
Redis class adds only I/O: the in-memory one shows what each method means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rtchub.base.connection import Address
from rtchub.cluster.store import StateStore

__all__ = ["Backplane", "RemoteHandler", "TopicHandler"]

# (recipient on this node, event) for events other nodes address to one connection
RemoteHandler = Callable[[Address, object], None]
# (topic, event) for events other nodes broadcast to a topic
TopicHandler = Callable[[str, object], None]


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

    def publish(self, to: Address, event: object) -> None:
        """Send ``event`` to a connection on another node (fire and forget)."""
        ...

    def broadcast(self, topic: str, event: object) -> None:
        """Send ``event`` to every other node's subscribers of ``topic`` (fire and forget)."""
        ...

    def on_remote(self, to_conn: RemoteHandler, to_topic: TopicHandler) -> None:
        """Register the handlers for what other nodes send to this node."""
        ...

    async def start(self) -> None:
        """Connect and start listening."""
        ...

    async def close(self) -> None:
        """Stop listening and release connections."""
        ...
