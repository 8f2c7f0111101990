"""The one delivery path: typed events to a connection or to a topic's subscribers.

Every feature hands its events to the :class:`Courier`: to one connection by
:class:`~rtchub.base.connection.Address` (a relay, a mailbox message, a match) or to every
subscriber of a topic (voice's stream announcements). Local recipients get the event
directly; others through the backplane, once per node. Each connection registers, once,
the sink of each event class it renders (the dialect that speaks it on that connection),
so delivery is a few lookups and one call. No feature keeps sinks or listener lists of its
own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from rtchub.base.connection import Address
from rtchub.cluster.backplane import Backplane

__all__ = ["Courier", "Delivery", "EventSink", "Routes", "Topics"]


class Delivery(Protocol):
    """What a feature's service needs of the courier to reach one connection."""

    def deliver(self, to: Address, event: object) -> bool:
        """Hand ``event`` to the connection at ``to``; never blocks, never raises. False
        when it cannot reach ``to``'s node now (the backplane is unreachable)."""
        ...


class Topics(Delivery, Protocol):
    """What a feature's service needs of the courier to reach everyone who listens."""

    def broadcast(self, topic: str, event: object) -> None:
        """Hand ``event`` to every subscriber of ``topic`` on every node."""
        ...

    def subscribe(self, topic: str, conn: str) -> None:
        """Deliver ``topic``'s broadcasts to the local connection ``conn``."""
        ...

    def unsubscribe(self, topic: str, conn: str) -> None:
        """Stop delivering ``topic`` to ``conn``."""
        ...


class EventSink(Protocol):
    """A local connection: takes an event and renders it for its client."""

    def deliver(self, event: object) -> None:
        """Render and queue ``event``; never blocks, never raises."""
        ...


# a connection's sinks, and which of them renders each event class (the index is shared
# by every connection of an endpoint, so a connection costs one small tuple here)
Routes = tuple[Sequence[EventSink], Mapping[type, int]]


class Courier:
    """Delivers to local connections directly and to other nodes through the backplane."""

    __slots__ = ("_backplane", "_node", "_sinks", "_subscribed", "_topics")

    def __init__(self, backplane: Backplane) -> None:
        self._backplane = backplane
        self._node = backplane.node_id
        self._sinks: dict[str, Routes] = {}
        self._topics: dict[str, dict[str, Routes]] = {}
        # conn -> its topics: a tuple (a connection has one or two; an empty set is 216 B)
        self._subscribed: dict[str, tuple[str, ...]] = {}
        backplane.on_remote(self._from_remote, self._from_topic, self.has)

    @property
    def node(self) -> str:
        """This node's ID."""
        return self._node

    def register(self, conn: str, sinks: Sequence[EventSink], index: Mapping[type, int]
                 ) -> Address:
        """Make a local connection reachable: ``index`` maps each event class it renders to
        the one of ``sinks`` that renders it. Returns its address."""
        self._sinks[conn] = (sinks, index)
        return Address(self._node, conn)

    def unregister(self, conn: str) -> None:
        """Forget a closed connection and its topic subscriptions."""
        self._sinks.pop(conn, None)
        for topic in self._subscribed.pop(conn, ()):
            members = self._topics.get(topic)
            if members is not None:
                members.pop(conn, None)
                if not members:
                    del self._topics[topic]
                    self._backplane.unlisten(topic)

    def has(self, conn: str) -> bool:
        """True while the local connection ``conn`` is registered."""
        return conn in self._sinks

    def alive(self, address: Address) -> bool:
        """True while ``address`` is an open connection of this node."""
        return address.node == self._node and address.conn in self._sinks

    def subscribe(self, topic: str, conn: str) -> None:
        """Deliver ``topic``'s broadcasts to the registered connection ``conn``."""
        routes = self._sinks.get(conn)
        if routes is None:
            raise LookupError(f"connection {conn!r} is not registered")
        members = self._topics.get(topic)
        if members is None:
            members = self._topics[topic] = {}
            self._backplane.listen(topic)
        members[conn] = routes
        topics = self._subscribed.get(conn, ())
        if topic not in topics:
            self._subscribed[conn] = (*topics, topic)

    def unsubscribe(self, topic: str, conn: str) -> None:
        """Stop delivering ``topic`` to ``conn``."""
        members = self._topics.get(topic)
        if members is not None:
            members.pop(conn, None)
            if not members:
                del self._topics[topic]
                self._backplane.unlisten(topic)
        topics = self._subscribed.get(conn)
        if topics is not None and topic in topics:
            rest = tuple(t for t in topics if t != topic)
            if rest:
                self._subscribed[conn] = rest
            else:
                del self._subscribed[conn]

    def deliver(self, to: Address, event: object) -> bool:
        """Deliver to ``to`` wherever it lives; a vanished local connection is skipped.
        False when ``to`` is on another node and the backplane cannot send now."""
        if to.node == self._node:
            routes = self._sinks.get(to.conn)
            if routes is not None:
                i = routes[1].get(type(event))
                if i is not None:
                    routes[0][i].deliver(event)
            return True
        return self._backplane.publish(to, event)

    def deliver_all(self, recipients: Iterable[Address], event: object) -> None:
        """Deliver one event to several addresses."""
        for to in recipients:
            self.deliver(to, event)

    def broadcast(self, topic: str, event: object) -> None:
        """Deliver to every subscriber of ``topic`` on this node and on every other node."""
        self._local_topic(topic, event)
        self._backplane.broadcast(topic, event)

    def subscribers(self, topic: str) -> int:
        """Local subscribers of ``topic``."""
        return len(self._topics.get(topic, ()))

    def _local_topic(self, topic: str, event: object) -> None:
        members = self._topics.get(topic)
        if members:
            kind = type(event)
            for sinks, index in tuple(members.values()):  # a snapshot: a sink may leave
                i = index.get(kind)
                if i is not None:
                    sinks[i].deliver(event)

    def _from_remote(self, to: Address, event: object) -> None:
        routes = self._sinks.get(to.conn)
        i = routes[1].get(type(event)) if routes is not None else None
        if routes is not None and i is not None:
            routes[0][i].deliver(event)

    def _from_topic(self, topic: str, event: object) -> None:
        self._local_topic(topic, event)

    def __len__(self) -> int:
        return len(self._sinks)
