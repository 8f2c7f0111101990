"""The one upgrade router both HTTP stacks ask: which WebSocket endpoint, or which refusal.

A request target is split the same way on both stacks (absolute-form targets such as
``GET http://host:8080/ws`` included, the query parsed into keys, never matched as a
substring), so a socket's first request (picows) and a later request on a kept-alive
socket (aiohttp) reach the same endpoint with the same answer. Refusals happen before the
upgrade, as HTTP errors in the one vocabulary, in this order:

====  =====================  ==================================================
404   not_found              no WebSocket endpoint at that path
426   upgrade_required       no ``Upgrade: websocket``, or a version other than 13
400   bad_message            no ``Sec-WebSocket-Key`` or no ``Sec-WebSocket-Version``
403   origin_not_allowed     the ``Origin`` is not allowed
429   rate_limited           more upgrades from this IP than ``WS_RATE_PER_MIN``
503   capacity               the server is starting or draining
400   (the endpoint's own)   the query is invalid for the endpoint (pairing's appID)
====  =====================  ==================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aiohttp import web

from rtchub.errors import NotFound, ProtocolError, UpgradeRequired
from rtchub.hub import Hub
from rtchub.net.session import Dialect, FrameCodec

__all__ = ["ROUTER", "Admission", "Endpoint", "Router", "split_target"]

QueryParser = Callable[[Mapping[str, str]], Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A WebSocket endpoint: its path, the dialects spoken there, and, for an endpoint
    that shares its path, the query key that selects it and the parser of its query.

    An endpoint may also frame its messages its own way (``codec``), ping with a text
    frame of its protocol instead of a WebSocket ping (``text_ping``: Engine.IO's ``2``,
    sent on every heartbeat sweep, as its clients expect), and take only the upgrades
    whose query ``accepts`` on the fast path, leaving every other request of its path to
    an aiohttp route of its own (``mounted=False``: the gateway does not mount the path
    on aiohttp)."""

    path: str
    dialects: tuple[Dialect, ...]
    selected_by: str | None = None
    parse_query: QueryParser | None = None
    codec: FrameCodec | None = None
    text_ping: bytes | None = None
    accepts: Callable[[Mapping[str, str]], bool] | None = None
    mounted: bool = True


@dataclass(frozen=True, slots=True)
class Admission:
    """An upgrade the router accepted: the endpoint, its parsed query, the client IP."""

    endpoint: Endpoint
    params: Any
    remote: str


def split_target(target: str) -> tuple[str, dict[str, str]]:
    """(decoded path, query) of a request target, origin-form or absolute-form.

    A query key given twice keeps its first value; a key without ``=`` has the value "".
    """
    if not target.startswith("/"):
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, value)
    return unquote(path), params


class Router:
    """WebSocket endpoints by path, and the admission checks every upgrade passes.

    A path may end in one parameter, ``/webrtc/signal/{roomID}``: it matches any one
    non-empty last segment, which the endpoint's query parser finds under that name.
    """

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._by_path: dict[str, list[Endpoint]] = {}
        self._templates: dict[str, tuple[str, str]] = {}  # prefix -> (parameter, path)

    def add(self, endpoint: Endpoint) -> None:
        """Serve ``endpoint``. Endpoints selected by a query key are tried first."""
        prefix, brace, name = endpoint.path.rpartition("/{")
        if brace and name.endswith("}") and name[:-1].isidentifier():
            self._templates[prefix + "/"] = (name[:-1], endpoint.path)
        endpoints = self._by_path.setdefault(endpoint.path, [])
        endpoints.append(endpoint)
        endpoints.sort(key=lambda e: e.selected_by is None)

    def speak(self, path: str, dialect: Dialect) -> None:
        """Add ``dialect`` to what the plain endpoint at ``path`` speaks (several features
        share ``/ws``: their message types do not collide)."""
        endpoints = self._by_path.setdefault(path, [])
        for i, endpoint in enumerate(endpoints):
            if endpoint.selected_by is None:
                endpoints[i] = Endpoint(path, (*endpoint.dialects, dialect))
                return
        endpoints.append(Endpoint(path, (dialect,)))

    @property
    def paths(self) -> frozenset[str]:
        """Every path whose WebSocket endpoints the gateway mounts on aiohttp too."""
        return frozenset(path for path, endpoints in self._by_path.items()
                         if any(e.mounted for e in endpoints))

    def serves(self, path: str, query: Mapping[str, str] | None = None) -> bool:
        """True when an upgrade to ``path`` (with ``query``) is the gateway's: the path
        has a WebSocket endpoint that takes it."""
        if self._template(path) is not None:
            return True
        endpoints = self._by_path.get(path)
        if not endpoints:
            return False
        return any(e.accepts is None or e.accepts(query or {}) for e in endpoints)

    def _template(self, path: str) -> tuple[str, str, str] | None:
        """(parameter, its value, the endpoint's path) of a parametrized path."""
        prefix, _, last = path.rpartition("/")
        found = self._templates.get(prefix + "/") if last else None
        return None if found is None else (found[0], last, found[1])

    def endpoint(self, path: str, query: Mapping[str, str]) -> Endpoint:
        """The endpoint for ``path`` and ``query``; :class:`NotFound` when there is none."""
        return self._resolve(path, query)[0]

    def _resolve(self, path: str, query: Mapping[str, str]
                 ) -> tuple[Endpoint, Mapping[str, str]]:
        candidates = self._by_path.get(path)
        if candidates is None and (match := self._template(path)) is not None:
            name, value, path = match
            candidates = self._by_path.get(path)
            query = {**query, name: value}
        for endpoint in candidates or ():
            if endpoint.selected_by is None or endpoint.selected_by in query:
                return endpoint, query
        raise NotFound(f"no WebSocket endpoint at {path[:80]!r}")

    def admit(self, target: str, headers: Mapping[str, str], peer_ip: str | None
              ) -> Admission:
        """Decide an upgrade request; raises the refusal as an RtcHubError (see above)."""
        path, raw_query = split_target(target)
        endpoint, query = self._resolve(path, raw_query)
        if "websocket" not in _tokens(headers.get("Upgrade", "")):
            raise UpgradeRequired("WebSocket upgrade expected",
                                  {"Upgrade": "websocket", "Connection": "Upgrade"})
        version = headers.get("Sec-WebSocket-Version", "").strip()
        if not version or not headers.get("Sec-WebSocket-Key", "").strip():
            raise ProtocolError("a WebSocket upgrade needs Sec-WebSocket-Key and "
                                "Sec-WebSocket-Version (RFC 6455)")
        if version != "13":
            raise UpgradeRequired(f"unsupported Sec-WebSocket-Version {version[:20]!r}: this "
                                  "server speaks version 13 (RFC 6455)",
                                  {"Sec-WebSocket-Version": "13"})
        hub = self._hub
        remote = hub.client_ip(peer_ip, headers.get("X-Forwarded-For"))
        hub.admit_upgrade(headers.get("Origin"), remote)
        params = endpoint.parse_query(query) if endpoint.parse_query is not None else None
        return Admission(endpoint, params, remote)


ROUTER = web.AppKey("router", Router)


def _tokens(value: str) -> Sequence[str]:
    return [t.strip().lower() for t in value.split(",")]
