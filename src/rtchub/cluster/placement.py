"""Which node hosts a room whose media must live on one node: the hook for call rooms.

An SFU room (seed 003) forwards RTP between the peer connections of its participants, so
all of them must hold their peer connection with the same node, as in LiveKit. The first
participant to join places the room on its node (:meth:`Placement.claim` writes the owner
atomically; a room already placed keeps its owner); every later participant, on whatever
node its WebSocket landed, learns the owner from the same call. Then:

* its signaling stays on its own node's connection and is relayed to the owner through
  the courier (events to the owner's node address, answers back to the participant's
  address), and
* its media goes straight to the owner: the owner's SDP answer carries the owner's own
  ICE candidates (``RTC_NODE_IP``), so the browser's peer connection is with the owner.

A room is released by its owner when its last participant leaves; a room whose owner was
lost is swept (:meth:`Placement.sweep_node`), so the next participant places it again
(its participants reconnect: their media was on the lost node). docs/scaling.md has the
whole design.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rtchub.base.connection import Address
from rtchub.cluster.store import StateStore

__all__ = ["PLACEMENT_PREFIX", "RECORDS", "Placed", "Placement"]

PLACEMENT_PREFIX = "place:"


@dataclass(frozen=True, slots=True)
class Placed:
    """A room's home: the node that hosts its media, and that node's public base URL
    (``NODE_URL``; empty when it has none) for the participants sent there."""

    node: str
    url: str = ""


RECORDS = (Placed,)


class Placement:
    """Places rooms of one kind (``"sfu"``) on nodes through the shared store."""

    def __init__(self, store: StateStore, node: str, kind: str, url: str = "") -> None:
        self._store = store
        self._node = node
        self._url = url
        self._prefix = f"{PLACEMENT_PREFIX}{kind}:"

    def _key(self, room: str) -> str:
        return f"{self._prefix}{room}"

    async def claim(self, room: str) -> Placed:
        """Where ``room`` lives: this node when the room was not placed yet."""
        key, here = self._key(room), Placed(self._node, self._url)

        def place(values: Mapping[str, object | None]
                  ) -> tuple[Mapping[str, object | None], Placed]:
            current = values.get(key)
            if isinstance(current, Placed):
                return {}, current
            return {key: here}, here

        return await self._store.transact((key,), place)

    async def owner(self, room: str) -> str | None:
        """The node hosting ``room``, if it is placed (a read: nothing is claimed)."""
        current = await self._store.get(self._key(room))
        return current.node if isinstance(current, Placed) else None

    async def release(self, room: str) -> bool:
        """The room is empty: forget its placement (only its owner does this). True when
        it was placed here and is forgotten now."""
        key, node = self._key(room), self._node

        def forget(values: Mapping[str, object | None]
                   ) -> tuple[Mapping[str, object | None], bool]:
            current = values.get(key)
            if isinstance(current, Placed) and current.node == node:
                return {key: None}, True
            return {}, False

        return await self._store.transact((key,), forget)

    async def sweep_node(self, node: str, alive: Callable[[Address], bool]) -> None:
        """Rooms placed on a lost node are placed again by their next participant."""
        if node == self._node:
            return      # this node is alive: its rooms stay here
        def lost(value: object | None) -> bool:
            return isinstance(value, Placed) and value.node == node

        def unplace(key: str) -> Callable[[Mapping[str, object | None]],
                                          tuple[Mapping[str, object | None], None]]:
            return lambda values: ({key: None} if lost(values.get(key)) else {}, None)

        for key, value in (await self._store.scan(self._prefix)).items():
            if lost(value):
                await self._store.transact((key,), unplace(key))
