"""xraph/forge's signaling dialect (seed 003's project) at ``/webrtc/signal/{roomID}``.

A client written to forge's ``extensions/webrtc`` opens one WebSocket per call room and
speaks three message types, SDP and candidates as browsers serialize them::

    {"type": "webrtc.offer", "sdp": {"type": "offer", "sdp": "v=0..."}}
    {"type": "webrtc.answer", "sdp": {"type": "answer", "sdp": "v=0..."}}
    {"type": "webrtc.ice_candidate", "candidate": {"candidate": "...", "sdpMid": "0",
                                                   "sdpMLineIndex": 0}}

Forge takes the user from its auth middleware; here it is the join token's identity
(``?token=`` or ``?access_token=``), else ``?user_id=`` (a guest; a random id when
absent). The connection joins the call room at once (created as ``?topology=``, default
``sfu``, when it does not exist), and leaves it when it closes. Refusals before the
upgrade are HTTP errors: 400 for a bad room or user id, 401 ``unauthorized`` for a join
token that does not admit the user to the room.

In an SFU room the client's peer connection is with the server, as in forge: its offer
is answered with ``webrtc.answer``, and the server offers with ``webrtc.offer`` when
what the client receives changes (the client answers). A client offer while the
server's own offer waits is refused with ``signaling_failed`` (answer first, then offer
again). What the server sends carries forge's streaming envelope as well (``room_id``,
``user_id``, ``data`` with Go's field names, ``metadata.peer_id``), so a client that reads
forge's ``Message`` finds the description in ``data.SDP``. The room's state comes as
the call-room dialect's ``participants``, ``tracks``, ``active_speaker``, ``recording``
and ``chat`` frames, which forge clients may ignore.

A message that names a recipient (``"peer_id"``, or forge's ``"metadata": {"peer_id":
...}``) is relayed instead, in either topology: to that participant's forge connection
on this node, which receives it with ``"from"``, or, for a participant joined from
Python, to the signaling hooks (:attr:`ForgeDialect.hooks`, which the Python API's
signaling manager reads; they also see everything else forge clients send). In a mesh
room the server only relays, so a message must name its recipient.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from rtchub.base.connection import CloseCode, Connection, ErrorReply
from rtchub.base.ids import random_id, validate_id
from rtchub.errors import (
    InvalidField,
    NotInRoom,
    PeerNotFound,
    RoomElsewhere,
    RtcHubError,
    SignalingFailed,
    UnknownType,
)
from rtchub.features.calls.events import (
    ActiveSpeaker,
    Chat,
    ParticipantsChanged,
    PeerFailed,
    RecordingChanged,
    ServerOffer,
    TracksChanged,
)
from rtchub.features.calls.rules import Grants, Topology, parse_topology
from rtchub.features.calls.service import CallService
from rtchub.wire.frame import dumps
from rtchub.wire.webrtc import SdpLimits, check_candidate, check_description

__all__ = ["FORGE_PATH", "FORGE_TYPES", "ForgeDialect", "ForgeHandler", "ForgeParams",
           "ForgeRelay", "MeshDirectory"]

log = logging.getLogger("rtchub.calls")

FORGE_PATH: Final = "/webrtc/signal/{roomID}"
OFFER: Final = "webrtc.offer"
ANSWER: Final = "webrtc.answer"
CANDIDATE: Final = "webrtc.ice_candidate"
FORGE_TYPES: Final = frozenset({OFFER, ANSWER, CANDIDATE})
SERVER: Final = "server"  # who the server's own messages are from


@dataclass(frozen=True, slots=True)
class ForgeParams:
    """What the upgrade request decided: who joins which room, how, with which grants."""

    room: str
    user: str
    topology: Topology
    grants: Grants


@dataclass(frozen=True, slots=True)
class ForgeRelay:
    """A mesh room's signaling message for one participant, as the sender wrote it (handed
    to the recipient's connection on this node directly)."""

    room: str
    to: str
    sender: str
    frame: Mapping[str, Any]


class MeshDirectory:
    """Which forge connection holds each participant of a call room on this node."""

    def __init__(self) -> None:
        self._at: dict[tuple[str, str], ForgeHandler] = {}

    def add(self, room: str, user: str, handler: ForgeHandler) -> None:
        """``handler`` now speaks for ``user`` in ``room``."""
        self._at[(room, user)] = handler

    def discard(self, room: str, user: str, handler: ForgeHandler) -> None:
        """Forget ``user`` if ``handler`` still speaks for it."""
        if self._at.get((room, user)) is handler:
            del self._at[(room, user)]

    def find(self, room: str, user: str) -> ForgeHandler | None:
        """The connection of ``user`` in ``room``, if it is here."""
        return self._at.get((room, user))


def _recipient(obj: Mapping[str, Any]) -> str | None:
    """Whom a frame is for: ``peer_id``, or forge's ``metadata.peer_id`` (None: the
    server's peer)."""
    metadata = obj.get("metadata")
    to = obj.get("peer_id") or (metadata.get("peer_id") if isinstance(metadata, dict)
                                else None)
    if to is None:
        return None
    if not isinstance(to, str) or not to or len(to) > 256:
        raise InvalidField("'peer_id' must be a participant id")
    return to


def _envelope(kind: str, room: str, user: str, **fields: Any) -> bytes:
    return dumps({"type": kind, "room_id": room, "user_id": user, **fields,
                  "timestamp": time.time()})


def _description(kind: str, room: str, user: str, sdp: str) -> bytes:
    """A description in both shapes: ``sdp`` as browsers write it, ``data`` as forge's Go
    ``SessionDescription`` marshals."""
    return _envelope(f"webrtc.{kind}", room, SERVER, sdp={"type": kind, "sdp": sdp},
                     data={"Type": kind, "SDP": sdp}, metadata={"peer_id": user})


class ForgeDialect:
    """Forge's messages, spoken alone on ``/webrtc/signal/{roomID}``."""

    types: frozenset[str] = FORGE_TYPES
    events: tuple[type, ...] = (ServerOffer, PeerFailed, ParticipantsChanged, TracksChanged,
                                ActiveSpeaker, RecordingChanged, Chat)

    def __init__(self, calls: CallService, sdp: SdpLimits, max_id_length: int) -> None:
        self.calls = calls
        self.sdp = sdp
        self.max_id_length = max_id_length
        self.mesh = MeshDirectory()
        # an SFU room lives on one node (cluster/placement.py, through CallJoins):
        # ``place`` raises RoomElsewhere, ``vacated`` releases a room left empty
        self.place: Callable[[str], Awaitable[None]] | None = None
        self.vacated: Callable[[str], Awaitable[None]] | None = None
        # observers of every description and candidate a forge client sends:
        # (room, sender, frame type, the sdp or candidate object)
        self.hooks: list[Callable[[str, str, str, Mapping[str, Any] | None], None]] = []

    def notify(self, room: str, sender: str, kind: str,
               payload: Mapping[str, Any] | None) -> None:
        """Tell every hook; a failing hook is logged, never the client's problem."""
        for hook in list(self.hooks):
            try:
                hook(room, sender, kind, payload)
            except Exception:
                log.exception("a signaling hook failed")

    def parse_query(self, query: Mapping[str, str]) -> ForgeParams:
        """Decide the upgrade: the room (path), the user, the topology, the grants.
        Raises InvalidId / InvalidField (400) or Unauthorized (401)."""
        room = validate_id("room", query.get("roomID"), self.max_id_length)
        requested = query.get("user_id") or None
        if requested is not None:
            validate_id("user", requested, self.max_id_length)
        token = query.get("token") or query.get("access_token") or None
        topology = self.calls.topology_of(room)
        if topology is None:
            topology = parse_topology(query.get("topology", "sfu"))
        elif "topology" in query and parse_topology(query["topology"]) is not topology:
            raise InvalidField(f"room {room!r} is {topology.value}, not {query['topology']}")
        grants = self.calls.authorize(room, topology, token, requested)
        user = grants.identity or requested or random_id()
        return ForgeParams(room, user, topology, grants)

    def open(self, conn: Connection, params: object, reply_error: ErrorReply) -> ForgeHandler:
        """State for one connection."""
        if not isinstance(params, ForgeParams):
            raise TypeError("the forge dialect needs its parsed query")
        return ForgeHandler(self, conn, params, reply_error)


class ForgeHandler:
    """One forge connection: one participant of one call room."""

    def __init__(self, dialect: ForgeDialect, conn: Connection, params: ForgeParams,
                 reply_error: ErrorReply) -> None:
        self._d = dialect
        self._calls = dialect.calls
        self._conn = conn
        self._p = params
        self._reply_error = reply_error
        self._joined = False

    @property
    def user(self) -> str:
        """The participant this connection speaks for."""
        return self._p.user

    def start(self) -> Awaitable[None]:
        """Join the call room."""
        return self._join()

    async def _join(self) -> None:
        p = self._p
        try:
            if p.topology is Topology.SFU and self._d.place is not None:
                await self._d.place(p.room)
            await self._calls.join(p.room, p.user, topology=p.topology, grants=p.grants,
                                   address=self._conn.address)
        except RtcHubError as err:
            if self._d.vacated is not None and not isinstance(err, RoomElsewhere):
                await self._d.vacated(p.room)   # placed for a join that failed
            self._reply_error(err)
            self._conn.close(CloseCode.POLICY, err.code)
            return
        self._joined = True
        self._d.mesh.add(p.room, p.user, self)
        room = self._calls.get_room(p.room)
        self._conn.send(_envelope("joined", p.room, p.user, topology=p.topology.value,
                                  grants=p.grants.to_wire(),
                                  participants=room.participants_wire(),
                                  tracks=room.tracks_wire()))

    def handle(self, obj: dict[str, Any], received_ns: int) -> Awaitable[None] | None:
        """Apply one frame; SDP and candidates for the server peer return an awaitable."""
        if not self._joined:
            raise NotInRoom("not in the call room (the join was refused)")
        kind = obj["type"]
        if kind not in FORGE_TYPES:
            raise UnknownType(f"unknown message type {kind[:40]!r}")
        p = self._p
        payload: Mapping[str, Any] | None
        if kind == CANDIDATE:
            payload = candidate = check_candidate(obj.get("candidate"), "candidate")
        else:
            wanted = "offer" if kind == OFFER else "answer"
            payload = desc = check_description(obj.get("sdp"), "sdp", self._d.sdp,
                                               kinds=frozenset({wanted}), default=wanted)
        to = _recipient(obj)
        if to is not None and to != SERVER:
            self._relay(to, obj)
            self._d.notify(p.room, p.user, kind, payload)
            return None
        if p.topology is Topology.MESH:
            raise PeerNotFound("in a mesh room a message names its recipient: 'peer_id'")
        self._d.notify(p.room, p.user, kind, payload)
        if kind == CANDIDATE:
            if candidate is None:
                return self._calls.add_ice_candidate(p.room, p.user, None)
            return self._calls.add_ice_candidate(
                p.room, p.user, candidate.get("candidate") or None, candidate.get("sdpMid"),
                candidate.get("sdpMLineIndex"))
        if kind == ANSWER:
            return self._calls.accept_answer(p.room, p.user, desc["sdp"])
        return self._offer(desc["sdp"])

    async def _offer(self, sdp: str) -> None:
        p = self._p
        answer = await self._calls.accept_offer(p.room, p.user, sdp)
        if answer is None:
            raise SignalingFailed("the server's offer is waiting for your answer: answer it "
                                  "(webrtc.answer), then offer again")
        self._conn.send(_description("answer", p.room, p.user, answer))

    def _relay(self, to: str, obj: dict[str, Any]) -> None:
        p = self._p
        target = self._d.mesh.find(p.room, to)
        if target is not None and target is not self:
            target.deliver(ForgeRelay(p.room, to, p.user, obj))
            return
        room = self._calls.find_room(p.room)
        if to == p.user or room is None or to not in room.participants:
            raise PeerNotFound(f"{to[:80]!r} is not connected to room {p.room!r}")
        # a participant joined from Python: the signaling hooks carry it there

    def deliver(self, event: Any) -> None:
        """Render an event for this client; never raises."""
        p = self._p
        conn = self._conn
        match event:
            case ServerOffer(sdp=sdp):
                conn.send(_description("offer", p.room, p.user, sdp))
            case PeerFailed(code=code, message=message):
                conn.send(dumps({"type": "error", "code": code, "error": message,
                                 "message": message}))
            case ParticipantsChanged(participants=participants):
                conn.send(_envelope("participants", p.room, p.user,
                                    participants=[x.to_wire() for x in participants]))
            case TracksChanged(tracks=tracks):
                conn.send(_envelope("tracks", p.room, p.user,
                                    tracks=[t.to_wire() for t in tracks]))
            case ActiveSpeaker(participant=who):
                conn.send(_envelope("active_speaker", p.room, p.user, participant=who))
            case RecordingChanged(recording=info):
                conn.send(_envelope("recording", p.room, p.user, **info.to_wire()))
            case Chat(sender=sender, text=text, ts=ts):
                conn.send(dumps({"type": "chat", "from": sender, "text": text, "ts": ts}))
            case ForgeRelay(sender=sender, frame=frame):
                conn.send(dumps({**frame, "from": sender, "room_id": p.room,
                                 "user_id": sender}))
            case _:
                log.warning("forge dialect: no rendering for %s", type(event).__name__)

    def close(self) -> Awaitable[None] | None:
        """The connection is gone: leave the call room."""
        if not self._joined:
            return None
        self._joined = False
        p = self._p
        self._d.mesh.discard(p.room, p.user, self)
        return self._leave()

    async def _leave(self) -> None:
        p = self._p
        with contextlib.suppress(NotInRoom):  # the room was deleted under it
            await self._calls.leave(p.room, p.user)
        if self._d.vacated is not None:
            await self._d.vacated(p.room)
