"""One exception tree for everything rtchub refuses, each class with its wire code.

The core raises these; every protocol adapter renders them in its own dialect
(``{"type": "error", "code": ..., "error": ..., "message": ...}`` on the rooms
and voice WebSockets, an ``error`` event on Socket.IO, an HTTP status on the
REST endpoints). The names follow seed 003's sentinel errors.

    RtcHubError                      code                    http
    ├── ProtocolError                bad_message             400
    │   ├── MessageTooLarge          message_too_large       413
    │   ├── UnknownType              unknown_type            400
    │   ├── MissingField             missing_field           400
    │   ├── InvalidField             invalid_field           400
    │   │   └── InvalidQuality       invalid_quality         400   (set_quality: low|medium|high)
    │   ├── InvalidSDP               invalid_sdp             400   (ErrInvalidSDP)
    │   └── UpgradeRequired          upgrade_required        426
    ├── InvalidId                    invalid_id              400
    ├── RateLimited                  rate_limited            429
    ├── Unauthorized                 unauthorized            401   (ErrUnauthorized)
    ├── OriginNotAllowed             origin_not_allowed      403
    ├── NotFound                     not_found               404
    │   ├── RoomNotFound             room_not_found          404   (ErrRoomNotFound)
    │   ├── PeerNotFound             peer_not_found          404   (ErrPeerNotFound)
    │   ├── TrackNotFound            track_not_found         404   (ErrTrackNotFound)
    │   ├── StreamNotFound           no_stream               404
    │   └── CodeGone                 code_gone               410
    ├── Conflict                     conflict                409
    │   ├── PeerAlreadyExists        peer_already_exists     409   (ErrPeerAlreadyExists)
    │   │   └── IdTaken              id_taken                409
    │   ├── AlreadyInRoom            already_in_room         409
    │   ├── NotInRoom                not_in_room             409   (ErrNotInRoom)
    │   ├── TopologyMismatch         topology_mismatch       409   (join names another topology)
    │   └── RoomElsewhere            room_elsewhere          409   (an SFU room on another node)
    │   ├── StreamEnded              stream_ended            409
    │   └── SideTaken                side_taken              409
    ├── CapacityError                capacity                503
    │   ├── RoomFull                 room_full               503   (ErrRoomFull)
    │   ├── TooManyRooms             too_many_rooms          503
    │   ├── QueueFull                queue_full              503
    │   ├── CodesExhausted           codes_exhausted         503
    │   └── ClusterUnavailable       cluster_unavailable     503
    ├── SignalingFailed              signaling_failed        502   (ErrSignalingFailed)
    │   └── SignalingTimeout         signaling_timeout       504   (ErrSignalingTimeout)
    ├── ConnectionFailed             connection_failed       502   (ErrConnectionFailed)
    ├── CodecNotSupported            codec_not_supported     400   (ErrCodecNotSupported)
    ├── SFUNotEnabled                sfu_not_enabled         409   (ErrSFUNotEnabled)
    └── ServerError                  server_error            500
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyInRoom",
    "CapacityError",
    "ClusterUnavailable",
    "CodeGone",
    "CodecNotSupported",
    "CodesExhausted",
    "Conflict",
    "ConnectionFailed",
    "IdTaken",
    "InvalidField",
    "InvalidId",
    "InvalidQuality",
    "InvalidSDP",
    "MessageTooLarge",
    "MissingField",
    "NotFound",
    "NotInRoom",
    "OriginNotAllowed",
    "PeerAlreadyExists",
    "PeerNotFound",
    "ProtocolError",
    "QueueFull",
    "RateLimited",
    "RoomElsewhere",
    "RoomFull",
    "RoomNotFound",
    "RtcHubError",
    "SFUNotEnabled",
    "ServerError",
    "SideTaken",
    "SignalingFailed",
    "SignalingTimeout",
    "StreamEnded",
    "StreamNotFound",
    "TooManyRooms",
    "TopologyMismatch",
    "TrackNotFound",
    "Unauthorized",
    "UnknownType",
    "UpgradeRequired",
    "all_codes",
]


class RtcHubError(Exception):
    """Base of every error rtchub reports to a client.

    ``code`` is the stable wire identifier; ``str(err)`` is the human message.
    """

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(RtcHubError, ValueError):
    """A frame that cannot be understood: not JSON, not an object, wrong shape."""

    code = "bad_message"


class MessageTooLarge(ProtocolError):
    """A frame or field larger than the configured limit."""

    code = "message_too_large"
    http_status = 413


class UnknownType(ProtocolError):
    """A message whose ``type`` this endpoint does not speak."""

    code = "unknown_type"


class MissingField(ProtocolError):
    """A required field is absent."""

    code = "missing_field"


class InvalidField(ProtocolError):
    """A field is present but has the wrong type or an invalid value."""

    code = "invalid_field"


class InvalidQuality(InvalidField):
    """A quality other than ``low``, ``medium`` or ``high`` (seed 003's ``SetQuality``)."""

    code = "invalid_quality"


class InvalidSDP(ProtocolError):
    """A malformed session description (ErrInvalidSDP)."""

    code = "invalid_sdp"


class UpgradeRequired(ProtocolError):
    """A WebSocket endpoint asked for without a usable upgrade (no ``Upgrade: websocket``,
    or a ``Sec-WebSocket-Version`` other than 13); ``headers`` go on the HTTP answer."""

    code = "upgrade_required"
    http_status = 426

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers


class InvalidId(RtcHubError, ValueError):
    """A room, client or stream ID that is empty, too long or has bad characters."""

    code = "invalid_id"


class RateLimited(RtcHubError):
    """Too many requests; ``retry_after`` seconds until the window reopens."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(RtcHubError):
    """Authentication required (ErrUnauthorized)."""

    code = "unauthorized"
    http_status = 401


class OriginNotAllowed(RtcHubError):
    """The request's Origin is not in the allow list."""

    code = "origin_not_allowed"
    http_status = 403


class NotFound(RtcHubError):
    """Something named in the request does not exist."""

    code = "not_found"
    http_status = 404


class RoomNotFound(NotFound):
    """Call room does not exist (ErrRoomNotFound)."""

    code = "room_not_found"


class PeerNotFound(NotFound):
    """The addressed peer is not in the sender's room (ErrPeerNotFound)."""

    code = "peer_not_found"


class TrackNotFound(NotFound):
    """Media track not found (ErrTrackNotFound)."""

    code = "track_not_found"


class StreamNotFound(NotFound):
    """No audio stream available."""

    code = "no_stream"


class CodeGone(NotFound):
    """A pairing code that is used, expired or unknown (HTTP 410 Gone)."""

    code = "code_gone"
    http_status = 410


class Conflict(RtcHubError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409


class PeerAlreadyExists(Conflict):
    """Peer already in the room (ErrPeerAlreadyExists)."""

    code = "peer_already_exists"


class IdTaken(PeerAlreadyExists):
    """The requested client ID is held by another live connection; ``holder`` is where
    that connection is (so the server can check it is still alive)."""

    code = "id_taken"

    def __init__(self, message: str, holder: object = None) -> None:
        super().__init__(message)
        self.holder = holder


class AlreadyInRoom(Conflict):
    """The connection already joined a room; leave it first."""

    code = "already_in_room"


class NotInRoom(Conflict):
    """The operation needs a joined room (ErrNotInRoom)."""

    code = "not_in_room"


class TopologyMismatch(Conflict):
    """A join names a topology (mesh or sfu) other than the existing room's."""

    code = "topology_mismatch"


class RoomElsewhere(Conflict):
    """An SFU room's media lives on another node of the cluster; ``node`` names it and
    ``url`` is that node's public base URL (``NODE_URL``), empty when it has none."""

    code = "room_elsewhere"

    def __init__(self, message: str, node: str, url: str = "") -> None:
        super().__init__(message)
        self.node = node
        self.url = url


class StreamEnded(Conflict):
    """The requested stream has ended."""

    code = "stream_ended"


class SideTaken(Conflict):
    """A pairing side that already has a live connection."""

    code = "side_taken"


class CapacityError(RtcHubError):
    """A configured capacity limit is reached."""

    code = "capacity"
    http_status = 503


class RoomFull(CapacityError):
    """Room at max capacity (ErrRoomFull)."""

    code = "room_full"


class TooManyRooms(CapacityError):
    """The server holds the maximum number of rooms."""

    code = "too_many_rooms"


class QueueFull(CapacityError):
    """A bounded queue (mailbox, matchmaking) is full."""

    code = "queue_full"


class CodesExhausted(CapacityError):
    """Every pairing code is live; retry after one expires."""

    code = "codes_exhausted"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClusterUnavailable(CapacityError):
    """The shared store or another node cannot be reached now (the Redis backplane is
    down): what needs the cluster is refused until it is back."""

    code = "cluster_unavailable"


class SignalingFailed(RtcHubError):
    """SDP or ICE exchange failed (ErrSignalingFailed)."""

    code = "signaling_failed"
    http_status = 502


class SignalingTimeout(SignalingFailed):
    """Signaling timed out (ErrSignalingTimeout)."""

    code = "signaling_timeout"
    http_status = 504


class ConnectionFailed(RtcHubError):
    """WebRTC connection failed (ErrConnectionFailed)."""

    code = "connection_failed"
    http_status = 502


class CodecNotSupported(RtcHubError):
    """Requested codec not supported (ErrCodecNotSupported)."""

    code = "codec_not_supported"


class SFUNotEnabled(RtcHubError):
    """SFU operation on a mesh room (ErrSFUNotEnabled)."""

    code = "sfu_not_enabled"
    http_status = 409


class ServerError(RtcHubError):
    """An unexpected failure inside rtchub; the message starts with ``Server error:``."""

    code = "server_error"
    http_status = 500


def all_codes() -> dict[str, type[RtcHubError]]:
    """Every wire code mapped to its exception class (for docs and tests)."""
    found: dict[str, type[RtcHubError]] = {}
    stack: list[type[RtcHubError]] = [RtcHubError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found
