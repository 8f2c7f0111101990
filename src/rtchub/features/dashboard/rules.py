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


# the quality monitor's names (ConnectionQuality.to_dict) -> the names the page draws
_ALIASES = {"measured_at": "at", "packet_loss": "loss", "latency": "rtt",
            "bitrate_kbps": "bitrate"}


def _normal(sample: QualitySample) -> dict[str, object]:
    out = dict(sample)
    for theirs, ours in _ALIASES.items():
        if theirs in out and ours not in out:
            out[ours] = out[theirs]
    return out


def recent_samples(history: Mapping[str, Sequence[QualitySample]], now: float
                   ) -> dict[str, list[QualitySample]]:
    """Per peer, the samples of the last :data:`HISTORY_SECONDS` (at most
    :data:`MAX_SAMPLES`, the newest), with the monitor's field names also given as the
    page's (``measured_at`` as ``at``, ``packet_loss`` as ``loss``, ``latency`` as
    ``rtt``, ``bitrate_kbps`` as ``bitrate``); samples without a numeric ``at`` are kept."""
    out: dict[str, list[QualitySample]] = {}
    for peer, samples in history.items():
        normal = [_normal(s) for s in samples]
        kept = [s for s in normal
                if not isinstance(s.get("at"), int | float)
                or now - float(s["at"]) <= HISTORY_SECONDS]  # type: ignore[arg-type]
        out[str(peer)] = list(kept[-MAX_SAMPLES:])
    return out
