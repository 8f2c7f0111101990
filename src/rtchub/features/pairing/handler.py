"""The pair relay on one connection: ``GET /ws?appID=<uuid>&side=A|B`` (seed 004).

A connection is bound to its pair and side by the query string, which the router
checked before the upgrade (:func:`~rtchub.features.pairing.wire.parse_query`). Its
first operation joins the pair; every frame after it is applied in order by the
connection's serial executor: relays, mailbox operations and telemetry. A join that is
refused (side taken, pair gone) ends the connection with an error frame and a close code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, assert_never

import orjson

from rtchub.base.connection import Address, Connection, ErrorReply
from rtchub.base.metrics import Stats
from rtchub.errors import InvalidField, RtcHubError
from rtchub.features.pairing import wire
from rtchub.features.pairing.events import (
    EVENTS,
    PairComplete,
    PairEvent,
    PairMail,
    PairRelay,
    PeerLeft,
)
from rtchub.features.pairing.rules import Mail, Side
from rtchub.features.pairing.service import PairService

__all__ = ["PairDialect", "PairHandler"]

log = logging.getLogger("rtchub.pairing")


class PairDialect:
    """The relay dialect; each connection is bound to the appID and side of its query."""

    types: frozenset[str] = wire.TYPES
    events: tuple[type, ...] = EVENTS

    def __init__(self, service: PairService, stats: Stats) -> None:
        self._service = service
        self._stats = stats

    def open(self, conn: Connection, params: object, reply_error: ErrorReply) -> PairHandler:
        """State for one connection (``params``: its :class:`~wire.PairParams`)."""
        assert isinstance(params, wire.PairParams)
        return PairHandler(self._service, self._stats, conn, reply_error, params)


class PairHandler:
    """One side's connection: joins the pair, then applies its frames in order."""

    def __init__(self, service: PairService, stats: Stats, conn: Connection,
                 reply_error: ErrorReply, params: wire.PairParams) -> None:
        self._service = service
        self._stats = stats
        self._conn = conn
        self._error = reply_error
        self._app_id = params.app_id
        self._side = params.side
        self._joined = False
        self._written: set[int] = set()
        # the other side's connection while both are connected (PairComplete .. PeerLeft)
        self._partner: Address | None = None

    def start(self) -> Awaitable[None]:
        """Join the pair first; a refusal ends the connection."""
        return self._join()

    async def _join(self) -> None:
        try:
            await self._service.join(self._app_id, self._side, self._conn.address)
        except RtcHubError as err:
            self._error(err)
            self._conn.close(wire.refusal_close_code(err), err.message[:120])
            return
        self._joined = True

    # -- inbound -------------------------------------------------------------------------

    def handle(self, obj: dict[str, Any], received_ns: int) -> Awaitable[None] | None:
        """Decode one frame; store work returns the awaitable that finishes it."""
        if not self._joined:
            return None  # refused: the connection is closing
        raw = orjson.dumps(obj) if obj["type"] in wire.RELAY_TYPES else b""
        msg = wire.decode(obj, raw)
        match msg:
            case wire.Relay(kind=kind, raw=raw):
                self._stats.frames_out[kind] += 1
                self._service.relay(self._partner, self._side, kind, raw)
                return None
            case wire.Hello(delivered_up_to=seq):
                return self._hello(seq)
            case wire.Send(payload=payload, to=to):
                target = self._side.other if to is None else to
                if target is self._side:
                    raise InvalidField(f"'to' must be the other side ({self._side.other.value})")
                return self._send(target, payload)
            case wire.Delivered(seq=seq):
                return self._delivered(seq)
            case wire.Telemetry(event=event):
                self._service.count_telemetry(event)
                return None
            case wire.Ping():
                self._conn.send(wire.encode_pong())
                return None
            case _:
                assert_never(msg)

    async def _hello(self, seq: int) -> None:
        pair = await self._service.acknowledge(self._app_id, self._side, seq)
        self._trim(seq)
        for mail in pair.inbox(self._side).after(seq):
            self._push_mail(mail)

    async def _send(self, target: Side, payload: bytes) -> None:
        await self._service.send(self._app_id, self._side, target, payload)

    async def _delivered(self, seq: int) -> None:
        await self._service.acknowledge(self._app_id, self._side, seq)
        self._trim(seq)

    def _trim(self, up_to: int) -> None:
        self._written = {s for s in self._written if s > up_to}

    def close(self) -> Awaitable[None] | None:
        """The socket is gone: leave the pair (the other side is told)."""
        if not self._joined:
            return None
        self._joined = False
        return self._leave()

    async def _leave(self) -> None:
        await self._service.leave(self._app_id, self._side, self._conn.address)

    # -- outbound ------------------------------------------------------------------------

    def deliver(self, event: PairEvent) -> None:
        """Render a pairing event for this side."""
        match event:
            case PairRelay(raw=raw):
                self._conn.send(raw)
            case PairMail(mail=mail):
                self._push_mail(mail)
            case PairComplete(partner=partner):
                self._partner = partner
                self._conn.send(wire.encode_room_full())
            case PeerLeft(side=side):
                self._partner = None
                self._conn.send(wire.encode_peer_left(side))
            case _:
                assert_never(event)

    def _push_mail(self, mail: Mail) -> None:
        """Send a mailbox message unless this connection already sent it."""
        if mail.seq in self._written:
            return
        self._written.add(mail.seq)
        self._stats.frames_out["send"] += 1
        self._conn.send(wire.encode_mail(mail))
