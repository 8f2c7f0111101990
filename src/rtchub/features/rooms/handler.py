"""The rooms dialect on one connection: decode with the wire module, apply through the
rooms service, render the events it delivers.

Relays and pings finish at once (the hot path: no task, no await). A join or a leave
changes shared state and returns an awaitable; the connection's serial executor applies
later frames after it, so a client may send ``join`` and its first ``offer`` back to back.
Closing leaves the room after any join still in flight, so no member outlives its socket.

A join for an ID another connection holds probes that connection first (a seed-000 client
that reconnects after a network change often leaves a half-open socket behind): if it does
not answer within ``ID_PROBE_TIMEOUT``, the newcomer takes the ID and the old connection is
closed with 4001; a live holder keeps it and the newcomer gets ``id_taken``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Mapping
from typing import Any, Final, Protocol, assert_never

from rtchub.base.clock import Clock
from rtchub.base.connection import Address, Connection, ErrorReply
from rtchub.base.metrics import Stats
from rtchub.errors import AlreadyInRoom, IdTaken, NotInRoom, RtcHubError
from rtchub.features.rooms import wire
from rtchub.features.rooms.events import (
    EVENTS,
    Probe,
    ProbeAnswer,
    Relayed,
    Replaced,
    RoomEvent,
)
from rtchub.features.rooms.service import Enter, Membership, Rooms
from rtchub.wire.webrtc import SdpLimits

__all__ = ["Admitted", "CallRooms", "RoomsDialect", "RoomsHandler"]

log = logging.getLogger("rtchub.rooms")

_EVENT_NAMES: Final = {"Joined": "joined", "RoomMembers": "room_members"}


class Admitted(Protocol):
    """A join the call rooms admitted: the topology they found and the member id (a join
    token's identity, else the one asked for)."""

    @property
    def topology(self) -> str | None:
        """``mesh``, ``sfu``, or None (whatever the room has)."""
        ...

    @property
    def member(self) -> str | None:
        """The member id to join as (None: the server picks one)."""
        ...


class CallRooms(Protocol):
    """The call rooms' part of a join (seed 003; the calls feature, wired by the app)."""

    async def admit(self, room: str, requested: str | None, topology: str | None,
                    fields: Mapping[str, Any]) -> Any:
        """Before the join: check it (raise to refuse); returns an :class:`Admitted`."""
        ...

    async def enter(self, ticket: Any, room: str, member: str, address: Address,
                    topology: str) -> dict[str, Any]:
        """The member is in: join the call room; returns the fields ``joined`` gains."""
        ...

    def leave(self, address: Address) -> Awaitable[None] | None:
        """The connection at ``address`` left its room or closed."""
        ...

    async def vacated(self, room: str) -> None:
        """A join admitted for ``room`` failed: undo what admitting held for it."""
        ...


class RoomsDialect:
    """Seed 000's messages, spoken on ``/ws`` and ``/ws/rooms``.

    ``calls`` (set by the app when the calls feature is mounted) takes part in joins and
    leaves; without it every room is mesh."""

    types: frozenset[str] = wire.TYPES
    events: tuple[type, ...] = EVENTS

    def __init__(self, rooms: Rooms, stats: Stats, sdp: SdpLimits, clock: Clock,
                 probe_timeout: float) -> None:
        self.rooms = rooms
        self.stats = stats
        self.sdp = sdp
        self.clock = clock
        self.probe_timeout = probe_timeout
        self.probe_ids = itertools.count(1)
        self.calls: CallRooms | None = None

    def open(self, conn: Connection, params: object, reply_error: ErrorReply) -> RoomsHandler:
        """State for one connection."""
        return RoomsHandler(self, conn)


class RoomsHandler:
    """One connection's membership."""

    __slots__ = ("_conn", "_d", "_membership", "_probes", "_rooms", "_sdp", "_stats")

    def __init__(self, dialect: RoomsDialect, conn: Connection) -> None:
        self._d = dialect
        self._rooms = dialect.rooms
        self._stats = dialect.stats
        self._sdp = dialect.sdp
        self._conn = conn
        self._membership: Membership | None = None
        self._probes: dict[int, asyncio.Future[bool]] | None = None

    def start(self) -> None:
        """Nothing to do until the client joins."""

    def handle(self, obj: dict[str, Any], received_ns: int) -> Awaitable[None] | None:
        """Apply one frame; a join or leave returns the awaitable that finishes it."""
        kind = obj["type"]
        if kind in wire.SIGNAL_TYPES:
            # the hot path: validated straight into the relay, no message object
            to, body = wire.decode_signal(obj, self._sdp)
            membership = self._membership
            if membership is None:
                raise NotInRoom("join a room before sending signaling messages")
            self._rooms.relay(membership, kind, to, body, received_ns)
            return None
        msg = wire.decode(obj, self._sdp)
        match msg:
            case wire.Ping():
                self._stats.frames_out["pong"] += 1
                self._conn.send(wire.PONG)
                return None
            case wire.Join():
                return self._join(msg)
            case wire.Leave():
                return self._leave()
            case wire.Signal(kind=kind, to=to, body=body):
                self._relay(kind, to, body, received_ns)
                return None
            case _:
                assert_never(msg)

    def _relay(self, kind: str, to: str, body: dict[str, Any], received_ns: int) -> None:
        membership = self._membership
        if membership is None:
            raise NotInRoom("join a room before sending signaling messages")
        self._rooms.relay(membership, kind, to, body, received_ns)

    async def _join(self, msg: wire.Join) -> None:
        if self._membership is not None:
            raise AlreadyInRoom(f"already in room {self._membership.room!r}; send leave first")
        address = self._conn.address
        calls = self._d.calls
        client, topology, enter = msg.client, msg.topology, None
        if calls is not None:
            ticket = await calls.admit(msg.room, msg.client, msg.topology, msg.call or {})
            client, topology = ticket.member, ticket.topology

            async def enter(room: str, member: str, topology: str) -> dict[str, Any]:
                return await calls.enter(ticket, room, member, address, topology)
        try:
            m = await self._enter(msg, client, topology, enter)
        except RtcHubError:
            if calls is not None:
                await calls.vacated(msg.room)   # e.g. an SFU room placed for this join
            raise
        self._membership = m
        log.info("joined", extra={"room": m.room, "member": m.member, "conn": self._conn.id,
                                  "remote": self._conn.remote, "resumed": msg.token is not None})

    async def _enter(self, msg: wire.Join, client: str | None, topology: str | None,
                     enter: Enter | None) -> Membership:
        address = self._conn.address
        try:
            return await self._rooms.join(msg.room, client, address, msg.token,
                                          topology=topology, enter=enter)
        except IdTaken as taken:
            holder = taken.holder
            if not isinstance(holder, Address) or await self._alive(holder, msg):
                raise
            return await self._rooms.join(msg.room, client, address, msg.token,
                                          take_over=holder, topology=topology, enter=enter)

    async def _alive(self, holder: Address, msg: wire.Join) -> bool:
        """Probe the connection holding the ID; False when it does not answer in time
        (it waits twice the holder's probe timeout: the answer may cross nodes)."""
        d = self._d
        probe_id = next(d.probe_ids)
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._probes is None:
            self._probes = {}
        self._probes[probe_id] = answer
        timer = d.clock.call_later(2 * d.probe_timeout,
                                   lambda: None if answer.done() else answer.set_result(False))
        try:
            self._rooms.probe(holder, Probe(msg.room, msg.client or "", self._conn.address,
                                            probe_id))
            return await answer
        finally:
            timer.cancel()
            self._probes.pop(probe_id, None)

    async def _leave(self) -> None:
        membership, self._membership = self._membership, None
        if membership is None:
            raise NotInRoom("not in a room")
        await self._rooms.leave(membership)
        await self._leave_call()
        log.info("left", extra={"room": membership.room, "member": membership.member,
                                "conn": self._conn.id})

    def close(self) -> Awaitable[None] | None:
        """The connection is gone: leave the room (unless a resume replaced us)."""
        membership, self._membership = self._membership, None
        if membership is None:
            return None
        log.info("disconnected", extra={"room": membership.room, "member": membership.member,
                                        "conn": self._conn.id})
        if self._d.calls is None:
            return self._rooms.leave(membership)
        return self._leave_both(membership)

    async def _leave_both(self, membership: Membership) -> None:
        await self._rooms.leave(membership)
        await self._leave_call()

    async def _leave_call(self) -> None:
        calls = self._d.calls
        work = None if calls is None else calls.leave(self._conn.address)
        if work is not None:
            await work

    def _answer_probe(self, probe: Probe) -> None:
        m = self._membership
        if m is None or (m.room, m.member) != (probe.room, probe.member):
            self._rooms.answer(probe.reply_to, ProbeAnswer(probe.probe_id, False))
            return
        self._conn.probe(self._d.probe_timeout, lambda alive: self._rooms.answer(
            probe.reply_to, ProbeAnswer(probe.probe_id, alive)))

    def deliver(self, event: RoomEvent) -> None:
        """Render a rooms event for this client."""
        if type(event) is Relayed:
            self._stats.frames_out[event.kind] += 1
            self._conn.send(wire.encode_relayed(event))
            if event.received_ns:
                self._stats.relay_latency.observe(
                    (time.perf_counter_ns() - event.received_ns) / 1e9)
            return
        if type(event) is Replaced:
            self._membership = None
            self._conn.close(wire.CLOSE_REPLACED, event.reason)
            return
        if type(event) is Probe:
            self._answer_probe(event)
            return
        if type(event) is ProbeAnswer:
            waiting = self._probes.get(event.probe_id) if self._probes is not None else None
            if waiting is not None and not waiting.done():
                waiting.set_result(event.alive)
            return
        data = wire.encode_event(event)
        if data is not None:
            self._stats.frames_out[_EVENT_NAMES.get(type(event).__name__, "other")] += 1
            self._conn.send(data)
