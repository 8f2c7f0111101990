"""Time-limited TURN credentials in the coturn REST convention, and the RTCConfiguration
that carries them.

A TURN server that shares a secret with rtchub (coturn's ``use-auth-secret`` with
``static-auth-secret``) accepts any username of the form ``<expiry>:<user>`` whose
password is ``base64(HMAC-SHA1(secret, username))``, until the Unix time ``<expiry>``
passes. rtchub mints such a pair for every fetch of ``/api/rtc-config``, valid for
``TURN_TTL``: a browser never sees the secret, and a credential copied out of a page
stops working when it expires. Pure functions: the wall clock comes in as ``now``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from rtchub.config import TurnConfig

__all__ = ["rtc_configuration", "turn_credentials"]


def turn_credentials(secret: str, user: str, expires: int) -> tuple[str, str]:
    """(username, credential) valid until the Unix time ``expires``."""
    username = f"{expires}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def rtc_configuration(base: Mapping[str, Any], turn: TurnConfig | None, now: float
                      ) -> dict[str, Any]:
    """``base`` (RTC_CONFIG_JSON) with a TURN entry of fresh credentials added when TURN is
    configured; a new dict every time."""
    config = dict(base)
    if turn is None:
        return config
    username, credential = turn_credentials(turn.secret, turn.user, int(now + turn.ttl))
    config["iceServers"] = [*config.get("iceServers", []),
                            {"urls": list(turn.urls), "username": username,
                             "credential": credential}]
    return config
