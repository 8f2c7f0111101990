"""The pair relay's wire dialect (seed 004): JSON text frames with a ``type``.

Inbound, decoded into a closed union of frozen dataclasses:

* ``offer``, ``answer``, ``ice``, ``sender_ready`` -> :class:`Relay`: forwarded
  unchanged to the other side.
* ``hello`` ``{"deliveredUpTo": N}`` -> :class:`Hello`: I hold every mailbox
  message up to N; send me the rest.
* ``send`` ``{"to": "B", "payload": ...}`` -> :class:`Send`: queue ``payload``
  for the other side (``to`` is optional and must name the other side).
* ``delivered`` ``{"seq": N}`` -> :class:`Delivered`: drop my messages up to N.
* ``telemetry`` ``{"event": "ice-connected"}`` -> :class:`Telemetry`: counted.
* ``ping`` -> :class:`Ping`: answered with ``pong``.

Outbound: ``send`` ``{"seq", "from", "payload"}`` (a mailbox message),
``room_full`` (both sides are connected), ``peer_left`` ``{"side"}``,
``pong`` and ``error``.

The query ``?appID=<uuid>&side=A|B`` is checked before the upgrade
(:func:`parse_query`: a bad one is answered with HTTP 400). Refusals after it end the
connection, each after an ``error`` frame:

=========  ==================  =============================================
close      error code          when
=========  ==================  =============================================
4409       side_taken          that side of the pair is already connected
4410       code_gone           the appID is unknown or its pair expired
=========  ==================  =============================================
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from rtchub.errors import CodeGone, InvalidField, MissingField, RtcHubError, SideTaken, UnknownType
from rtchub.features.pairing.rules import Mail, Side

__all__ = [
    "CLOSE_GONE",
    "CLOSE_SIDE_TAKEN",
    "RELAY_TYPES",
    "TYPES",
    "Delivered",
    "Hello",
    "Inbound",
    "PairParams",
    "Ping",
    "Relay",
    "Send",
    "Telemetry",
    "decode",
    "encode_mail",
    "encode_peer_left",
    "encode_pong",
    "encode_room_full",
    "parse_query",
    "parse_redeem",
    "refusal_close_code",
]

CLOSE_SIDE_TAKEN: Final = 4409
CLOSE_GONE: Final = 4410
CLOSE_SERVER_ERROR: Final = 1011
RELAY_TYPES: Final = frozenset({"offer", "answer", "ice", "sender_ready"})
TYPES: Final = RELAY_TYPES | {"hello", "send", "delivered", "telemetry", "ping"}
_EVENT = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")
_MAX_SEQ: Final = 2**53


@dataclass(frozen=True, slots=True)
class PairParams:
    """The pair and side a connection speaks for, from its query string."""

    app_id: str
    side: Side


def parse_query(query: Mapping[str, str]) -> PairParams:
    """Validate ``?appID=<uuid>&side=A|B`` (appID normalised to lower case)."""
    app_id = query.get("appID")
    try:
        parsed = str(uuid.UUID(app_id or ""))
    except ValueError:
        raise InvalidField(f"appID must be a UUID, got {str(app_id)[:40]!r}") from None
    return PairParams(parsed, Side.parse(query.get("side")))


def parse_redeem(body: bytes, digits: int) -> str:
    """The code of a ``POST /rendezvous/redeem`` body ``{"code": "<digits>"}``."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    code = obj.get("code") if isinstance(obj, dict) else None
    if isinstance(code, str):
        code = code.strip()
        if len(code) == digits and code.isascii() and code.isdigit():
            return code
    raise InvalidField(f'expected a JSON body {{"code": "<{digits} digits>"}}')


def refusal_close_code(err: RtcHubError) -> int:
    """The close code that ends a connection refused after the upgrade."""
    if isinstance(err, CodeGone):
        return CLOSE_GONE
    if isinstance(err, SideTaken):
        return CLOSE_SIDE_TAKEN
    return CLOSE_SERVER_ERROR


@dataclass(frozen=True, slots=True)
class Relay:
    """A signaling frame for the other side, kept as the exact text the sender wrote."""

    kind: str
    raw: bytes

    def __post_init__(self) -> None:
        if self.kind not in RELAY_TYPES:
            raise UnknownType(f"{self.kind!r} is not a relay type")


@dataclass(frozen=True, slots=True)
class Hello:
    """The side holds every mailbox message up to ``delivered_up_to``."""

    delivered_up_to: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    """A mailbox message for ``to`` (None: the other side); ``payload`` is JSON text."""

    payload: bytes
    to: Side | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """The side acknowledges its mailbox messages up to ``seq``."""

    seq: int


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A client-side event (``ice-connected``, ``ice-failed``, ...) to count."""

    event: str

    def __post_init__(self) -> None:
        if not _EVENT.match(self.event):
            raise InvalidField("telemetry 'event' must be 1-40 characters of letters, "
                               "digits and . _ : -")


@dataclass(frozen=True, slots=True)
class Ping:
    """A liveness probe; answered with ``pong``."""


Inbound = Relay | Hello | Send | Delivered | Telemetry | Ping


def _seq(obj: dict[str, Any], *names: str, default: int | None = None) -> int:
    for name in names:
        if name in obj:
            value = obj[name]
            if isinstance(value, bool) or not isinstance(value, int) or not (
                    0 <= value < _MAX_SEQ):
                raise InvalidField(f"'{name}' must be a non-negative integer")
            return value
    if default is None:
        raise MissingField(f"'{obj['type']}' needs '{names[0]}'")
    return default


def decode(obj: dict[str, Any], raw: bytes = b"") -> Inbound:
    """Turn a parsed frame (``type`` already checked to be a string) into a message;
    ``raw`` is the text a relay frame forwards."""
    kind = obj["type"]
    if kind in RELAY_TYPES:
        return Relay(kind, raw)
    if kind == "hello":
        return Hello(_seq(obj, "deliveredUpTo", "delivered_up_to", default=0))
    if kind == "send":
        if "payload" not in obj:
            raise MissingField("'send' needs 'payload'")
        to = obj.get("to")
        return Send(orjson.dumps(obj["payload"]), None if to is None else Side.parse(to))
    if kind == "delivered":
        return Delivered(_seq(obj, "seq", "upTo", "up_to"))
    if kind == "telemetry":
        event = obj.get("event")
        if not isinstance(event, str):
            raise MissingField("'telemetry' needs a string 'event'")
        return Telemetry(event)
    if kind == "ping":
        return Ping()
    raise UnknownType(f"unknown message type {kind[:40]!r} (the pair relay speaks "
                      f"{', '.join(sorted(TYPES))})")


def encode_mail(mail: Mail) -> bytes:
    """A mailbox message as the recipient sees it."""
    head = b'{"type":"send","seq":%d,"from":"%s","payload":' % (
        mail.seq, mail.sender.value.encode())
    return head + mail.payload + b"}"


def encode_room_full() -> bytes:
    """Both sides are connected (seed 004's server event)."""
    return b'{"type":"room_full"}'


def encode_peer_left(side: Side) -> bytes:
    """The other side disconnected; its mailbox keeps messages for it."""
    return orjson.dumps({"type": "peer_left", "side": side.value})


def encode_pong() -> bytes:
    """The answer to ``ping``."""
    return b'{"type":"pong"}'
