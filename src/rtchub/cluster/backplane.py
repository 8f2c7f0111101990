"""The backplane protocol and the courier that delivers core events through it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rtchub.cluster.events import Address, Event
from rtchub.cluster.store import StateStore

__all__ = ["Backplane", "EventSink", "LocalCourier", "RemoteHandler"]

RemoteHandler = Callable[[Address, Event], None]


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

    def publish(self, to: Address, event: Event) -> None:
        """Send ``event`` to a connection on another node (fire and forget)."""
        ...

    def on_remote(self, handler: RemoteHandler) -> None:
        """Register the handler for events other nodes send to this node's connections."""
        ...

    async def start(self) -> None:
        """Connect and start listening."""
        ...

    async def close(self) -> None:
        """Stop listening and release connections."""
        ...


class EventSink(Protocol):
    """A local connection's session: takes an event and renders it in its dialect."""

    def deliver(self, event: Event) -> None:
        """Render and queue ``event`` for the client; never blocks, never raises."""
        ...


class LocalCourier:
    """Delivers to local sessions directly and to remote ones through the backplane."""

    def __init__(self, backplane: Backplane) -> None:
        self._backplane = backplane
        self._node = backplane.node_id
        self._sinks: dict[str, EventSink] = {}
        backplane.on_remote(self._from_remote)

    def register(self, conn: str, sink: EventSink) -> Address:
        """Make a local session reachable; returns its address."""
        self._sinks[conn] = sink
        return Address(self._node, conn)

    def unregister(self, conn: str) -> None:
        """Forget a closed session."""
        self._sinks.pop(conn, None)

    def deliver(self, to: Address, event: Event) -> None:
        """Deliver to ``to`` wherever it lives; a vanished local session is skipped."""
        if to.node == self._node:
            sink = self._sinks.get(to.conn)
            if sink is not None:
                sink.deliver(event)
        else:
            self._backplane.publish(to, event)

    def _from_remote(self, to: Address, event: Event) -> None:
        sink = self._sinks.get(to.conn)
        if sink is not None:
            sink.deliver(event)

    def __len__(self) -> int:
        return len(self._sinks)
