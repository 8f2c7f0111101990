"""The one validator of session descriptions and ICE candidates, for every dialect.

Rooms relays them, matchmaking relays them, voice and call rooms hand them to the
server's own peers: all check them here, with the same rules and the configured limits
(``SDP_MAX_BYTES``, ``SDP_MAX_MEDIA``), before anything parses them further. Each function
returns the value it checked, unchanged, so relays forward exactly what the sender wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rtchub.errors import InvalidField, InvalidSDP, MessageTooLarge, MissingField

__all__ = ["MAX_CANDIDATE", "SDP_TYPES", "SdpLimits", "check_candidate", "check_description"]

SDP_TYPES: Final = frozenset({"offer", "answer", "pranswer", "rollback"})
MAX_CANDIDATE: Final = 4096
_MAX_MID: Final = 64
_MAX_UFRAG: Final = 256


class SdpLimits:
    """The size limits of a session description; ``max_media`` None leaves the media
    sections uncounted (a relay that never parses the description)."""

    __slots__ = ("max_bytes", "max_media")

    def __init__(self, max_bytes: int, max_media: int | None) -> None:
        self.max_bytes = max_bytes
        self.max_media = max_media


def check_description(value: object, what: str, limits: SdpLimits, *,
                      kinds: frozenset[str] = SDP_TYPES, default: str | None = None
                      ) -> Mapping[str, Any]:
    """An RTCSessionDescriptionInit ``{type, sdp}``: ``type`` one of ``kinds`` (``default``
    when absent), ``sdp`` a description starting with ``v=`` (empty for rollback), within
    ``limits``. Raises InvalidSDP, MissingField or MessageTooLarge naming ``what``."""
    # the relay hot path: one test for a good description, diagnosis only for a bad one
    if type(value) is dict:
        kind = value.get("type", default)
        sdp = value.get("sdp")
        if (type(kind) is str and kind in kinds and type(sdp) is str and sdp.startswith("v=")
                and len(sdp) <= limits.max_bytes
                and (limits.max_media is None or sdp.count("\nm=") <= limits.max_media)):
            return value
    return _diagnose(value, what, limits, kinds, default)


def _diagnose(value: object, what: str, limits: SdpLimits, kinds: frozenset[str],
              default: str | None) -> Mapping[str, Any]:
    if value is None:
        raise MissingField(f"missing field {what!r} (an RTCSessionDescription {{type, sdp}})")
    if not isinstance(value, dict):
        raise InvalidSDP(f"{what!r} must be an RTCSessionDescription object {{type, sdp}}")
    kind = value.get("type", default)
    if not isinstance(kind, str) or kind not in kinds:   # (a list is not even hashable)
        allowed = " or ".join(sorted(kinds))
        raise InvalidSDP(f"'{what}.type' must be {allowed}, got {str(kind)[:20]!r}")
    sdp = value.get("sdp")
    if kind == "rollback" and not sdp:
        return value
    if not isinstance(sdp, str) or not sdp.startswith("v="):
        raise InvalidSDP(f"'{what}.sdp' must be a session description starting with 'v='")
    if len(sdp) > limits.max_bytes:
        raise MessageTooLarge(f"'{what}.sdp' is {len(sdp)} characters; the limit is "
                              f"{limits.max_bytes} (SDP_MAX_BYTES)")
    raise InvalidSDP(f"'{what}.sdp' has {sdp.count(chr(10) + 'm=')} media sections; the "
                     f"limit is {limits.max_media} (SDP_MAX_MEDIA)")


def check_candidate(value: object, what: str) -> Mapping[str, Any] | None:
    """An RTCIceCandidateInit ``{candidate, sdpMid, sdpMLineIndex, usernameFragment}`` or
    None (end of candidates). Raises InvalidField naming ``what``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField(f"{what!r} must be an RTCIceCandidateInit object or null")
    line = value.get("candidate", "")
    if not isinstance(line, str) or len(line) > MAX_CANDIDATE:
        raise InvalidField(f"'{what}.candidate' must be a string of at most {MAX_CANDIDATE} "
                           "characters")
    mid = value.get("sdpMid")
    if mid is not None and (not isinstance(mid, str) or len(mid) > _MAX_MID):
        raise InvalidField(f"'{what}.sdpMid' must be a short string or null")
    index = value.get("sdpMLineIndex")
    if index is not None and (type(index) is not int or not 0 <= index < 1024):
        raise InvalidField(f"'{what}.sdpMLineIndex' must be a small integer or null")
    frag = value.get("usernameFragment")
    if frag is not None and (not isinstance(frag, str) or len(frag) > _MAX_UFRAG):
        raise InvalidField(f"'{what}.usernameFragment' must be a short string or null")
    return value
