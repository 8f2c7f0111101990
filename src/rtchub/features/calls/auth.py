"""Join tokens for call rooms: JWT (HS256) with an identity, a room and grants, as LiveKit does.

A token is minted by the application's backend (or ``rtchub token``) with the secret the
server is configured with (``CALL_TOKEN_SECRET``) and handed to one user for one room::

    {"sub": "alice", "room": "standup", "name": "Alice",
     "grants": {"publish": true, "subscribe": true, "record": false, "admin": false},
     "iat": 1767225600, "nbf": 1767225600, "exp": 1767247200}

:func:`verify_join_token` accepts it only if it is signed with HS256 and that secret, names
the room being joined, and is within its ``nbf``..``exp`` window (Unix seconds, with
:data:`LEEWAY` for clocks a little apart); every other token (expired, for another room,
signed with another key, ``alg: none``, not a JWT at all) raises
:class:`~rtchub.errors.Unauthorized` whose message says which.

:func:`authorize` is the one admission decision a join goes through: with no secret the
server is a dev server and everyone joins as a guest; with a secret a token is required,
unless guests are allowed (:class:`AuthPolicy`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import jwt

from rtchub.config.calls import MIN_SECRET_LENGTH
from rtchub.errors import Unauthorized
from rtchub.features.calls.rules import Grants as CallGrants

__all__ = [
    "ALGORITHM",
    "GRANT_NAMES",
    "LEEWAY",
    "MIN_SECRET_LENGTH",
    "AuthPolicy",
    "Grants",
    "TokenAuthorizer",
    "authorize",
    "mint_join_token",
    "parse_grants",
    "verify_join_token",
]

ALGORITHM: Final = "HS256"
GRANT_NAMES: Final = ("publish", "subscribe", "record", "admin")
LEEWAY: Final = 5.0  # seconds of clock difference tolerated on exp and nbf

# a grant left out of a token: publishing and subscribing are what joining is for
_GRANT_DEFAULTS: Final = {"publish": True, "subscribe": True, "record": False, "admin": False}


@dataclass(frozen=True, slots=True)
class Grants:
    """Who joins which room, and what they may do there.

    ``publish``: send audio, video and screen; ``subscribe``: receive others' tracks;
    ``record``: start, stop, pause and resume the room's recording; ``admin``: mute
    others and turn their video off. ``guest`` is true when no token was checked.
    """

    identity: str
    room: str
    publish: bool = True
    subscribe: bool = True
    record: bool = False
    admin: bool = False
    display_name: str | None = None
    guest: bool = False

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("grants need an identity")
        if not self.room:
            raise ValueError("grants need a room")

    def as_dict(self) -> dict[str, bool]:
        """The four grants, as the wire's ``joined.grants`` carries them."""
        return {"publish": self.publish, "subscribe": self.subscribe, "record": self.record,
                "admin": self.admin}


def parse_grants(text: str | Iterable[str]) -> dict[str, bool]:
    """``"publish,subscribe"`` (or a list of names) -> every grant, true for those named.

    Raises :class:`ValueError` naming an unknown grant.
    """
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    for name in names:
        if name not in GRANT_NAMES:
            raise ValueError(f"unknown grant {name!r}: expected some of {', '.join(GRANT_NAMES)}")
    return {name: name in names for name in GRANT_NAMES}


def _secret_bytes(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < MIN_SECRET_LENGTH:
        raise ValueError(f"a token secret of at least {MIN_SECRET_LENGTH} bytes, got "
                         f"{len(key)}")
    return key


def mint_join_token(secret: str | bytes, *, identity: str, room: str,
                    publish: bool = True, subscribe: bool = True, record: bool = False,
                    admin: bool = False, display_name: str | None = None,
                    ttl: float = 6 * 3600.0,
                    clock: Callable[[], float] = time.time) -> str:
    """A join token for ``identity`` in ``room``, valid from now for ``ttl`` seconds.

    ``clock`` gives Unix seconds. Raises :class:`ValueError` for an empty identity or
    room, a ``ttl`` that is not positive, or a secret shorter than
    :data:`MIN_SECRET_LENGTH` bytes.
    """
    if not identity or not room:
        raise ValueError("a join token needs an identity and a room, both non-empty")
    if ttl <= 0:
        raise ValueError(f"a token lifetime greater than zero, got {ttl}")
    now = int(clock())
    claims: dict[str, Any] = {
        "sub": identity, "room": room,
        "grants": {"publish": publish, "subscribe": subscribe, "record": record,
                   "admin": admin},
        "iat": now, "nbf": now, "exp": now + max(1, round(ttl)),
    }
    if display_name:
        claims["name"] = display_name
    return jwt.encode(claims, _secret_bytes(secret), algorithm=ALGORITHM)


def _claims(token: str, key: bytes) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise Unauthorized("join token is not a JWT") from None
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise Unauthorized(f"join token algorithm {alg!r} is not accepted: expected "
                           f"{ALGORITHM}")
    try:
        # exp and nbf are checked against the injected clock below, not pyjwt's
        claims = jwt.decode(token, key, algorithms=[ALGORITHM],
                            options={"verify_exp": False, "verify_nbf": False,
                                     "verify_iat": False, "verify_aud": False,
                                     "verify_iss": False})
    except jwt.InvalidSignatureError:
        raise Unauthorized("join token signature does not verify with this server's "
                           "secret") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"join token is malformed: {exc}") from None
    if not isinstance(claims, dict):
        raise Unauthorized("join token claims are not an object")
    return claims


def _number(claims: dict[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise Unauthorized(f"join token has no {name!r} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unauthorized(f"join token claim {name!r} must be a number of Unix seconds")
    return float(value)


def verify_join_token(token: str, room: str, secret: str | bytes,
                      clock: Callable[[], float] = time.time) -> Grants:
    """Check a join token for ``room`` and return what it grants.

    ``clock`` gives Unix seconds. Raises :class:`~rtchub.errors.Unauthorized` for a token
    that is not a JWT, is not HS256 (``alg: none`` included), does not verify with
    ``secret``, has expired or is not valid yet, names another room, or lacks an
    identity.
    """
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not isinstance(token, str) or not token:
        raise Unauthorized("join token is empty")
    claims = _claims(token, key)
    now = clock()
    exp = _number(claims, "exp", required=True)
    nbf = _number(claims, "nbf", required=False)
    if exp is not None and now > exp + LEEWAY:
        raise Unauthorized(f"join token expired {now - exp:.0f}s ago")
    if nbf is not None and now + LEEWAY < nbf:
        raise Unauthorized(f"join token is not valid for another {nbf - now:.0f}s")
    identity = claims.get("sub")
    if not isinstance(identity, str) or not identity:
        raise Unauthorized("join token has no identity ('sub')")
    token_room = claims.get("room")
    if not isinstance(token_room, str) or not token_room:
        raise Unauthorized("join token names no room")
    if token_room != room:
        raise Unauthorized(f"join token is for room {token_room!r}, not {room!r}")
    raw = claims.get("grants", {})
    if not isinstance(raw, dict):
        raise Unauthorized("join token claim 'grants' must be an object")
    grants: dict[str, bool] = {}
    for name, default in _GRANT_DEFAULTS.items():
        value = raw.get(name, default)
        if not isinstance(value, bool):
            raise Unauthorized(f"join token grant {name!r} must be true or false")
        grants[name] = value
    shown = claims.get("name")
    return Grants(identity=identity, room=room, display_name=shown if isinstance(shown, str)
                  and shown else None, **grants)


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """How call-room joins are admitted.

    ``secret`` None is dev mode: no token is checked and everyone joins as a guest
    with ``dev_grants`` (publish and subscribe: recording writes to the server's disk
    and muting acts on others, so both need a token's grant). With a
    secret, a join needs a valid token unless ``allow_guests``; such guests get
    ``guest_grants`` (names from :data:`GRANT_NAMES`).
    """

    secret: str | None = None
    allow_guests: bool = False
    guest_grants: frozenset[str] = frozenset({"publish", "subscribe"})
    dev_grants: frozenset[str] = frozenset({"publish", "subscribe"})

    def __post_init__(self) -> None:
        if self.secret is not None:
            _secret_bytes(self.secret)
        unknown = (set(self.guest_grants) | set(self.dev_grants)) - set(GRANT_NAMES)
        if unknown:
            raise ValueError(f"unknown guest grants {sorted(unknown)}")

    @property
    def dev(self) -> bool:
        """True when no secret is configured (every join is a guest)."""
        return self.secret is None

    @property
    def guests(self) -> bool:
        """True when a join without a token is admitted."""
        return self.secret is None or self.allow_guests

    def guest(self, identity: str, room: str, display_name: str | None = None) -> Grants:
        """What a guest gets."""
        names = self.dev_grants if self.secret is None else self.guest_grants
        return Grants(identity=identity, room=room, display_name=display_name, guest=True,
                      **{name: name in names for name in GRANT_NAMES})


def authorize(policy: AuthPolicy, room: str, token: str | None, identity: str | None,
              display_name: str | None = None,
              clock: Callable[[], float] = time.time) -> Grants:
    """The admission decision for one join of ``room``.

    A token, when the server has a secret, is verified and its identity is the
    joiner's (``identity``, if also given, must match it). With no token, the joiner is
    a guest named ``identity`` when :attr:`AuthPolicy.guests`; otherwise
    :class:`~rtchub.errors.Unauthorized`. In dev mode a token is not checked.
    """
    if token and policy.secret is not None:
        grants = verify_join_token(token, room, policy.secret, clock)
        if identity and identity != grants.identity:
            raise Unauthorized(f"join token is for {grants.identity!r}, not {identity!r}")
        if display_name and grants.display_name is None:
            grants = Grants(identity=grants.identity, room=room, publish=grants.publish,
                            subscribe=grants.subscribe, record=grants.record,
                            admin=grants.admin, display_name=display_name)
        return grants
    if not policy.guests:
        raise Unauthorized(f"room {room!r} needs a join token (access_token)")
    if not identity:
        raise Unauthorized("a guest needs an id to join")
    return policy.guest(identity, room, display_name)


class TokenAuthorizer:
    """The call service's :class:`~rtchub.features.calls.service.Authorizer` on join
    tokens: :func:`authorize` under ``policy``, with ``clock`` giving Unix seconds."""

    def __init__(self, policy: AuthPolicy, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self._clock = clock

    def authorize(self, room: str, token: str | None, requested: str | None) -> CallGrants:
        """The grants of one join of ``room``; :class:`Unauthorized` refuses it."""
        grants = authorize(self.policy, room, token, requested, clock=self._clock)
        return CallGrants(grants.identity, grants.room, grants.publish, grants.subscribe,
                          grants.record, grants.admin)
