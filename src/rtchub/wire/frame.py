"""The JSON envelope every WebSocket dialect shares: ``{"type": ..., ...}``."""

from __future__ import annotations

from typing import Any

import orjson

from rtchub.errors import InvalidField, MissingField, ProtocolError, RtcHubError

__all__ = ["dumps", "encode_error", "parse_frame", "require_str"]

dumps = orjson.dumps


def parse_frame(data: bytes | str) -> dict[str, Any]:
    """Parse one text frame into a JSON object with a string ``type``.

    Raises :class:`ProtocolError` for invalid UTF-8, invalid JSON or a
    non-object, and :class:`MissingField`/:class:`InvalidField` for ``type``.
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not valid JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"frame must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind is None:
        raise MissingField("frame has no 'type'")
    if not isinstance(kind, str):
        raise InvalidField("'type' must be a string")
    return obj


def require_str(obj: dict[str, Any], name: str) -> str:
    """A required string field."""
    value = obj.get(name)
    if value is None:
        raise MissingField(f"'{obj.get('type')}' needs '{name}'")
    if not isinstance(value, str):
        raise InvalidField(f"'{name}' must be a string")
    return value


def encode_error(err: RtcHubError) -> bytes:
    """``{"type": "error", "code", "error", "message"}``: ``error`` for seed 000 clients,
    ``message`` for seed 002 clients, ``code`` from the one error vocabulary."""
    body: dict[str, Any] = {"type": "error", "code": err.code, "error": err.message,
                            "message": err.message}
    retry = getattr(err, "retry_after", None)
    if retry is not None:
        body["retry_after"] = round(retry, 3)
    node = getattr(err, "node", None)   # RoomElsewhere: the node that hosts the room
    if isinstance(node, str):
        body["node"] = node
        url = getattr(err, "url", "")     # ... and where a client reaches it
        if url:
            body["url"] = url
    return dumps(body)
