"""Validation of the IDs clients choose (rooms, members, streams)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from rtchub.errors import InvalidId

__all__ = ["IdFactory", "random_id", "random_token", "validate_id"]

IdFactory = Callable[[], str]


def validate_id(kind: str, value: object, max_length: int) -> str:
    """Return ``value`` if it is a usable ID, else raise :class:`InvalidId`.

    An ID is a string of 1 to ``max_length`` characters with no control
    characters and no leading or trailing whitespace.
    """
    if not isinstance(value, str):
        raise InvalidId(f"{kind} ID must be a string")
    if not value:
        raise InvalidId(f"{kind} ID must not be empty")
    if len(value) > max_length:
        raise InvalidId(f"{kind} ID is {len(value)} characters; the limit is {max_length}")
    if value != value.strip() or not value.isprintable():
        raise InvalidId(f"{kind} ID {value[:80]!r} has whitespace at an end or control characters")
    return value


def random_id() -> str:
    """A short random client ID (12 URL-safe characters)."""
    return secrets.token_urlsafe(9)


def random_token() -> str:
    """An unguessable resume token (128 bits)."""
    return secrets.token_urlsafe(16)
