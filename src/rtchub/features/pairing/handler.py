"""The pair relay on one connection: ``GET /ws?appID=<uuid>&side=A|B`` (seed 004).

A connection is bound to its pair and side by the query string, so its dialect
is built per connection (:class:`PairDialect`). Frames are decoded on arrival
(bad ones get an error frame at once) and applied in order by one owned task
per connection, behind the join: relays, mailbox operations and telemetry.

Refusals that end the connection, each after an ``error`` frame:

=========  ==================  =============================================
close      error code          when
=========  ==================  =============================================
4400       invalid_field       appID is not a UUID or side is not A or B
4409       side_taken          that side of the pair is already connected
4410       code_gone           the appID is unknown or its pair expired
=========  ==================  =============================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from typing import Any, Final

import orjson

from rtchub.base.metrics import Stats
from rtchub.base.tasks import TaskOwner
from rtchub.errors import (
    CodeGone,
    InvalidField,
    PeerNotFound,
    QueueFull,
    RtcHubError,
    ServerError,
    SideTaken,
)
from rtchub.features.pairing import wire
from rtchub.features.pairing.rules import Mail, Side
from rtchub.features.pairing.service import PairService
from rtchub.net.connection import Connection
from rtchub.net.session import ErrorReply

__all__ = ["CLOSE_BAD_QUERY", "CLOSE_GONE", "CLOSE_SIDE_TAKEN", "PairDialect", "PairHandler",
           "parse_query"]

log = logging.getLogger("rtchub.pairing")

CLOSE_BAD_QUERY: Final = 4400
CLOSE_SIDE_TAKEN: Final = 4409
CLOSE_GONE: Final = 4410
CLOSE_SERVER_ERROR: Final = 1011
MAX_BACKLOG: Final = 256


def parse_query(app_id: str | None, side: str | None) -> tuple[str, Side]:
    """Validate the query: a UUID appID (normalised to lower case) and side A or B."""
    try:
        parsed = str(uuid.UUID(app_id or ""))
    except ValueError:
        raise InvalidField(f"appID must be a UUID, got {str(app_id)[:40]!r}") from None
    return parsed, Side.parse(side)


def _close_code(err: RtcHubError) -> int:
    if isinstance(err, ServerError):
        return CLOSE_SERVER_ERROR
    if isinstance(err, CodeGone):
        return CLOSE_GONE
    if isinstance(err, SideTaken):
        return CLOSE_SIDE_TAKEN
    return CLOSE_BAD_QUERY


class PairDialect:
    """The relay dialect for one connection, bound to its appID and side."""

    types: frozenset[str] = wire.TYPES

    def __init__(self, service: PairService, tasks: TaskOwner, stats: Stats,
                 app_id: str | None, side: str | None) -> None:
        self._service = service
        self._tasks = tasks
        self._stats = stats
        self._app_id = app_id
        self._side = side

    def open(self, conn: Connection, reply_error: ErrorReply) -> PairHandler:
        """Start the connection's state (refusing it at once when the query is bad)."""
        return PairHandler(self._service, self._tasks, self._stats, conn, reply_error,
                           self._app_id, self._side)


class PairHandler:
    """One side's connection: joins the pair, then applies its frames in order."""

    def __init__(self, service: PairService, tasks: TaskOwner, stats: Stats, conn: Connection,
                 reply_error: ErrorReply, app_id: str | None, side: str | None) -> None:
        self._service = service
        self._stats = stats
        self._conn = conn
        self._error = reply_error
        self._queue: deque[wire.Inbound] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._written: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        try:
            self._app_id, self._side = parse_query(app_id, side)
        except RtcHubError as err:
            self._refuse(err)
            return
        self._addr = service.register(conn.id, self)
        self._task = tasks.spawn(self._run(), name=f"pair-{conn.id}")

    def _refuse(self, err: RtcHubError) -> None:
        self._closing = True
        self._error(err)
        self._conn.close(_close_code(err), err.message[:120])

    # -- inbound -------------------------------------------------------------------------

    def handle(self, obj: dict[str, Any], received_ns: int) -> None:
        """Decode now (errors go straight back); apply in order behind earlier frames."""
        if self._closing:
            return
        raw = orjson.dumps(obj) if obj["type"] in wire.RELAY_TYPES else b""
        msg = wire.decode(obj, raw)
        if len(self._queue) >= MAX_BACKLOG:
            raise QueueFull(f"more than {MAX_BACKLOG} frames waiting to be applied")
        self._queue.append(msg)
        self._wake.set()

    async def _run(self) -> None:
        service, side = self._service, self._side
        try:
            pair = await service.join(self._app_id, side, self._addr)
        except RtcHubError as err:
            self._refuse(err)
            return
        except Exception as exc:
            log.exception("pair join failed on conn=%s", self._conn.id)
            self._refuse(ServerError(f"Server error: {type(exc).__name__}"))
            return
        try:
            other = service.sink_of(pair, side.other)
            if other is not None:
                other.push(wire.encode_room_full())
                self.push(wire.encode_room_full())
            while not self._closing:
                while self._queue and not self._closing:
                    msg = self._queue.popleft()
                    try:
                        await self._apply(msg)
                    except RtcHubError as err:
                        self._error(err)
                    except Exception as exc:
                        log.exception("pair frame failed on conn=%s", self._conn.id)
                        self._error(ServerError(f"Server error: {type(exc).__name__}"))
                self._wake.clear()
                if not self._closing:
                    await self._wake.wait()
        finally:
            with contextlib.suppress(Exception):
                after = await service.leave(self._app_id, side, self._addr)
                if after is not None:
                    peer = service.sink_of(after, side.other)
                    if peer is not None:
                        peer.push(wire.encode_peer_left(side))

    async def _apply(self, msg: wire.Inbound) -> None:
        service, app_id, side = self._service, self._app_id, self._side
        match msg:
            case wire.Relay(kind=kind, raw=raw):
                peer = await service.peer(app_id, side)
                if peer is None:
                    raise PeerNotFound(f"side {side.other.value} is not connected; "
                                       f"{kind!r} was not relayed")
                service.relayed[kind] += 1
                self._stats.frames_out[kind] += 1
                peer.push(raw)
            case wire.Hello(delivered_up_to=seq):
                pair = await service.acknowledge(app_id, side, seq)
                self._trim(seq)
                for mail in pair.inbox(side).after(seq):
                    self.push_mail(mail)
            case wire.Send(payload=payload, to=to):
                target = side.other if to is None else to
                if target is side:
                    raise InvalidField(f"'to' must be the other side ({side.other.value})")
                await service.send(app_id, side, target, payload)
            case wire.Delivered(seq=seq):
                await service.acknowledge(app_id, side, seq)
                self._trim(seq)
            case wire.Telemetry(event=event):
                service.count_telemetry(event)
            case wire.Ping():
                self.push(wire.encode_pong())

    def _trim(self, up_to: int) -> None:
        self._written = {s for s in self._written if s > up_to}

    def close(self) -> None:
        """The socket is gone: stop applying frames and leave the pair."""
        self._closing = True
        self._wake.set()
        self._service.unregister(self._conn.id)

    # -- outbound (PairSink) ---------------------------------------------------------------

    def push(self, data: bytes) -> None:
        """Queue a frame for this client."""
        self._conn.send(data)

    def push_mail(self, mail: Mail) -> None:
        """Send a mailbox message unless this connection already sent it."""
        if mail.seq in self._written:
            return
        self._written.add(mail.seq)
        self._stats.frames_out["send"] += 1
        self._conn.send(wire.encode_mail(mail))
