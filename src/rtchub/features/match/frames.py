"""Seed 001's Socket.IO frames on the hot path, with orjson instead of the json module.

python-socketio builds each event as a :class:`socketio.packet.Packet`, which walks the
whole payload looking for bytes (an offer's SDP included) and encodes it with the
standard ``json`` module; engine.io then wraps it in a packet of its own. Matchmaking
never sends binary, so :func:`event_message` renders an outbound event straight into
the Engine.IO ``MESSAGE`` frame (``42["name",data]`` on the wire) and
:func:`decode_event` reads an inbound event frame (Socket.IO ``EVENT`` on the default
namespace, no ack id, no attachments) into its name and arguments. Anything else
(connect, acks, binary events, other namespaces, malformed JSON) is left to
python-socketio, whose packets use orjson too (:class:`OrjsonPacket`).

orjson refuses what the standard module accepted only by extension (``NaN``,
``Infinity``, integers beyond 64 bits, lone surrogates): such a frame is malformed
input, refused as python-socketio refuses any undecodable packet.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from engineio import packet as eio_packet
from socketio import packet as sio_packet

__all__ = ["OrjsonPacket", "decode_event", "event_message"]

_MESSAGE: Final = eio_packet.MESSAGE


class _Orjson:
    """The two functions python-socketio's packets call, done by orjson."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        """Compact JSON text (python-socketio passes ``separators``; orjson is compact)."""
        return orjson.dumps(obj).decode()

    # orjson's own function: a malformed frame then fails inside the library's parser,
    # which the fault log counts as the client's fault (not as a bug of rtchub's)
    loads = staticmethod(orjson.loads)


class OrjsonPacket(sio_packet.Packet):  # type: ignore[misc]  # untyped library
    """python-socketio's packet with orjson as its JSON codec (passed as ``serializer``,
    so no module state of python-socketio is changed)."""

    json = _Orjson


def event_message(event: str, data: Any) -> eio_packet.Packet:
    """The Engine.IO frame of a Socket.IO event ``event`` with one argument ``data``
    (none when ``data`` is None, as python-socketio's ``emit`` does)."""
    body = orjson.dumps([event] if data is None else [event, data])
    return eio_packet.Packet(_MESSAGE, "2" + body.decode())


def decode_event(frame: object) -> tuple[str, list[Any]] | None:
    """``(name, args)`` of a plain event frame (``2[...]``); None for anything else,
    which python-socketio then handles (and refuses if it is malformed)."""
    if type(frame) is not str or not frame.startswith("2["):
        return None
    try:
        value = orjson.loads(frame[1:])
    except orjson.JSONDecodeError:
        return None
    if type(value) is not list or not value or type(value[0]) is not str:
        return None
    return value[0], value[1:]
