"""Pure decisions of the dashboard: who may see it, and which quality samples to draw.

The admin token is compared in constant time. The browser keeps a session cookie that is
not the token itself but an HMAC of it (so the cookie, if it leaks from a browser profile,
does not reveal the token that ``Authorization: Bearer`` accepts on other machines, and
rotating the token ends every session).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

__all__ = ["COOKIE", "HISTORY_SECONDS", "MAX_SAMPLES", "QualitySample", "bearer_ok",
           "cookie_ok", "recent_samples", "session_value"]

# One quality sample of one peer, as the quality monitor gives it (plain JSON values):
# {"at": unix seconds, "score": 0-100, "loss": %, "jitter": ms, "rtt": ms,
#  "bitrate": kbps, "warnings": [...]}; missing keys are drawn as gaps.
QualitySample = Mapping[str, object]

COOKIE = "rtchub_dashboard"
HISTORY_SECONDS = 300.0   # the graphs show the last five minutes
MAX_SAMPLES = 120         # per peer, whatever the monitor keeps


def session_value(token: str) -> str:
    """The session cookie's value for ``token``."""
    return hmac.new(token.encode(), b"rtchub dashboard session v1", hashlib.sha256).hexdigest()


def bearer_ok(header: str | None, token: str) -> bool:
    """True when an ``Authorization`` header carries ``Bearer <token>``."""
    if not header:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def cookie_ok(value: str | None, token: str) -> bool:
    """True when a session cookie was made from ``token``."""
    if not value:
        return False
    return hmac.compare_digest(value.encode(), session_value(token).encode())


def recent_samples(history: Mapping[str, Sequence[QualitySample]], now: float
                   ) -> dict[str, list[QualitySample]]:
    """Per peer, the samples of the last :data:`HISTORY_SECONDS` (at most
    :data:`MAX_SAMPLES`, the newest); samples without a numeric ``at`` are kept in order."""
    out: dict[str, list[QualitySample]] = {}
    for peer, samples in history.items():
        kept = [s for s in samples
                if not isinstance(s.get("at"), int | float)
                or now - float(s["at"]) <= HISTORY_SECONDS]  # type: ignore[arg-type]
        out[str(peer)] = [dict(s) for s in kept[-MAX_SAMPLES:]]
    return out
