"""The rooms dialect on a connection: decode, drive the rooms service, render.

Relays and pings are handled synchronously in the frame callback (the hot
path: no task, no await). Joins and leaves change shared state and await the
store; while one is in flight, later frames of the same connection wait in
order behind it, so a client may send ``join`` and its first ``offer`` back to
back.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from typing import Any, Final

from rtchub.base.metrics import Stats
from rtchub.base.tasks import TaskOwner
from rtchub.cluster.backplane import LocalCourier
from rtchub.cluster.events import Event, Relayed, Replaced
from rtchub.errors import AlreadyInRoom, NotInRoom, QueueFull, RtcHubError, ServerError
from rtchub.features.rooms import wire
from rtchub.features.rooms.service import Membership, Rooms
from rtchub.net.connection import CLOSE_REPLACED, Connection
from rtchub.net.session import ErrorReply

__all__ = ["RoomsDialect", "RoomsHandler"]

log = logging.getLogger("rtchub.rooms")

_EVENT_NAMES: Final = {"Joined": "joined", "RoomMembers": "room_members"}


class RoomsDialect:
    """Seed 000's messages, spoken on ``/ws`` and ``/ws/rooms``."""

    types: frozenset[str] = wire.TYPES

    def __init__(self, rooms: Rooms, courier: LocalCourier, tasks: TaskOwner,
                 stats: Stats) -> None:
        self._rooms = rooms
        self._courier = courier
        self._tasks = tasks
        self._stats = stats

    def open(self, conn: Connection, reply_error: ErrorReply) -> RoomsHandler:
        """State for one connection."""
        return RoomsHandler(self._rooms, self._courier, self._tasks, self._stats, conn,
                            reply_error)


class RoomsHandler:
    """One connection's membership and its ordered control operations."""

    __slots__ = ("_address", "_backlog", "_conn", "_courier", "_error", "_membership",
                 "_rooms", "_stats", "_tasks")

    def __init__(self, rooms: Rooms, courier: LocalCourier, tasks: TaskOwner, stats: Stats,
                 conn: Connection, reply_error: ErrorReply) -> None:
        self._rooms = rooms
        self._courier = courier
        self._tasks = tasks
        self._stats = stats
        self._conn = conn
        self._error = reply_error
        self._membership: Membership | None = None
        self._backlog: deque[tuple[dict[str, Any], int]] | None = None
        self._address = courier.register(conn.id, self)

    # -- inbound -------------------------------------------------------------------------

    def handle(self, obj: dict[str, Any], received_ns: int) -> None:
        """Handle one frame now, or queue it behind a join/leave in flight."""
        if self._backlog is not None:
            limit = self._rooms.limits.pending_max
            if len(self._backlog) >= limit:
                raise QueueFull(f"more than {limit} messages sent while a join is pending")
            self._backlog.append((obj, received_ns))
            return
        kind = obj["type"]
        if kind in wire.SIGNAL_TYPES:
            # the hot path: validated straight into the relay, no message object (same
            # checks in the same order as decode() then _now())
            to, body = wire.decode_signal(obj)
            membership = self._membership
            if membership is None:
                raise NotInRoom("join a room before sending signaling messages")
            self._rooms.relay(membership, kind, to, body, received_ns)
            return
        msg = wire.decode(obj)
        if type(msg) is wire.Join or type(msg) is wire.Leave:
            self._backlog = deque()
            self._tasks.spawn(self._control(msg), name=f"rooms-{self._conn.id}")
        else:
            self._now(msg, received_ns)

    def _now(self, msg: wire.RoomsMessage, received_ns: int) -> None:
        if type(msg) is wire.Signal:
            membership = self._membership
            if membership is None:
                raise NotInRoom("join a room before sending signaling messages")
            self._rooms.relay(membership, msg.kind, msg.to, msg.body, received_ns)
        elif type(msg) is wire.Ping:
            self._stats.frames_out["pong"] += 1
            self._conn.send(wire.PONG)

    async def _control(self, first: wire.RoomsMessage) -> None:
        try:
            await self._apply(first)
            while self._backlog:
                obj, received_ns = self._backlog.popleft()
                try:
                    msg = wire.decode(obj)
                    if type(msg) is wire.Join or type(msg) is wire.Leave:
                        await self._apply(msg)
                    else:
                        self._now(msg, received_ns)
                except RtcHubError as err:
                    self._error(err)
        finally:
            self._backlog = None

    async def _apply(self, msg: wire.RoomsMessage) -> None:
        try:
            if type(msg) is wire.Join:
                if self._membership is not None:
                    raise AlreadyInRoom(f"already in room {self._membership.room!r}; "
                                        "send leave first")
                self._membership = m = await self._rooms.join(msg.room, msg.client,
                                                              self._address, msg.token)
                log.info("joined", extra={"room": m.room, "member": m.member,
                                          "conn": self._conn.id, "remote": self._conn.remote,
                                          "resumed": msg.token is not None})
            elif type(msg) is wire.Leave:
                membership, self._membership = self._membership, None
                if membership is None:
                    raise NotInRoom("not in a room")
                await self._rooms.leave(membership)
                log.info("left", extra={"room": membership.room, "member": membership.member,
                                        "conn": self._conn.id})
        except RtcHubError as err:
            self._error(err)
        except Exception as exc:
            log.exception("rooms control failed on conn=%s", self._conn.id)
            self._error(ServerError(f"Server error: {type(exc).__name__}"))

    def close(self) -> None:
        """The connection is gone: leave the room (unless a resume replaced us)."""
        self._courier.unregister(self._conn.id)
        membership, self._membership = self._membership, None
        self._backlog = None
        if membership is not None:
            log.info("disconnected", extra={"room": membership.room,
                                            "member": membership.member, "conn": self._conn.id})
            # while shutting down the owner refuses new tasks: the store goes with the process
            with contextlib.suppress(RuntimeError):
                self._tasks.spawn(self._rooms.leave(membership), name="rooms-leave")

    # -- outbound ------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Render a core event for this client."""
        if type(event) is Relayed:
            self._stats.frames_out[event.kind] += 1
            self._conn.send(wire.encode_relayed(event))
            if event.received_ns:
                self._stats.relay_latency.observe(
                    (time.perf_counter_ns() - event.received_ns) / 1e9)
            return
        if type(event) is Replaced:
            self._membership = None
            self._conn.close(CLOSE_REPLACED, "session resumed by another connection")
            return
        data = wire.encode_event(event)
        if data is not None:
            self._stats.frames_out[_EVENT_NAMES.get(type(event).__name__, "other")] += 1
            self._conn.send(data)
