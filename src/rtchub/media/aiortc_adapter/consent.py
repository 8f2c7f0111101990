"""Hook 6, consent freshness (RFC 7675) that a slow peer does not lose.

aioice checks consent every 4-6 s with one binding request that must be
answered within 0.5 s (no retransmission) and closes the connection after six
unanswered checks in a row. A browser that answers in 0.6 s (a busy laptop, a
phone on a congested link, eight tabs on two cores) never stops answering,
yet loses its call half a minute later. RFC 7675 says consent expires when no
check was answered for 30 s; libwebrtc and libnice accept an answer to any
check still outstanding and retransmit like any other STUN request.

:func:`configure_consent` replaces one connection's ``query_consent`` (the
coroutine aioice's ``connect`` runs as a task and ``close`` cancels) with
:func:`_keep_consent`: a check every ``timeout / 6`` (0.8-1.2x, RFC 7675's
5 s at the default 30 s), each retransmitted like an ordinary STUN request for
up to the timeout (capped at 7.5 s), several outstanding at once, and the
connection closed once no check has been answered for ``timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from aioice import Connection, stun
from aiortc import RTCPeerConnection

__all__ = ["check_window", "configure_consent"]

log = logging.getLogger("rtchub.media")

_PATCHED = "_rtchub_consent"
_RTO = stun.RETRY_RTO  # aioice's first retransmission timeout (0.5 s)
_MAX_RETRANSMISSIONS = 3  # 0.5 + 1 + 2 + 4 = 7.5 s for one check at most


def check_window(timeout: float) -> tuple[float, int]:
    """How long one check waits for its answer, and its retransmissions, for ``timeout``.

    The most retransmissions (doubling from 0.5 s, at most three) whose whole wait
    fits in the consent timeout (an answer to any check still waiting refreshes
    consent); never fewer than none (one 0.5 s try).
    """
    retransmissions = 0
    while (retransmissions < _MAX_RETRANSMISSIONS
           and _RTO * (2 ** (retransmissions + 2) - 1) <= timeout):
        retransmissions += 1
    return _RTO * (2 ** (retransmissions + 1) - 1), retransmissions


def configure_consent(pc: RTCPeerConnection, timeout: float,
                      on_expired: Callable[[], None] | None = None) -> None:
    """Make every ICE connection of ``pc`` keep consent for ``timeout`` seconds.

    Call before the connection starts (``setRemoteDescription``/``setLocalDescription``
    of the first exchange); connections patched before are left as they are.
    ``on_expired`` is called when consent expires, just before the connection closes
    (aiortc then reports the peer connection closed, as if either side had closed it).
    """
    if timeout <= 0:
        raise ValueError(f"the consent timeout must be positive, got {timeout}")
    for transceiver in pc.getTransceivers():
        for transport in (transceiver.receiver.transport, transceiver.sender.transport):
            if transport is not None:
                _patch(transport.transport.iceGatherer._connection, timeout, on_expired)
    sctp = pc.sctp
    if sctp is not None:
        _patch(sctp.transport.transport.iceGatherer._connection, timeout, on_expired)


def _patch(conn: Connection, timeout: float, on_expired: Callable[[], None] | None) -> None:
    if getattr(conn, _PATCHED, False):
        return

    async def query_consent() -> None:
        await _keep_consent(conn, timeout, on_expired)

    conn.query_consent = query_consent  # type: ignore[method-assign]
    setattr(conn, _PATCHED, True)


class _Freshness:
    """When a check of one connection was last answered (loop time)."""

    __slots__ = ("answered",)

    def __init__(self, now: float) -> None:
        self.answered = now


async def _keep_consent(conn: Connection, timeout: float,
                        on_expired: Callable[[], None] | None = None) -> None:
    """Check consent until it expires (then close ``conn``) or the task is cancelled."""
    assert conn.remote_password is not None  # connect() has it before consent starts
    loop = asyncio.get_running_loop()
    interval = timeout / 6
    _, retransmissions = check_window(timeout)
    fresh = _Freshness(loop.time())
    checks: set[asyncio.Task[None]] = set()
    key = conn.remote_password.encode("utf8")
    try:
        while True:
            await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))
            if loop.time() - fresh.answered >= timeout:
                log.info("ICE consent expired: no check answered for %.1f s", timeout)
                if on_expired is not None:
                    try:
                        on_expired()
                    except Exception:
                        log.exception("the consent-expiry callback failed")
                conn._query_consent_task = None  # close() must not cancel this task
                await conn.close()
                return
            for pair in conn._nominated.values():
                check = loop.create_task(_check(conn, pair, key, retransmissions, fresh, loop))
                checks.add(check)
                check.add_done_callback(checks.discard)
    finally:
        for check in checks:
            check.cancel()


async def _check(conn: Connection, pair: Any, key: bytes, retransmissions: int,
                 fresh: _Freshness, loop: asyncio.AbstractEventLoop) -> None:
    request = conn.build_request(pair, nominate=False)
    try:
        await pair.protocol.request(request, pair.remote_addr, integrity_key=key,
                                    retransmissions=retransmissions)
    except (stun.TransactionError, ConnectionError, OSError):
        return  # unanswered: the next check may be
    fresh.answered = loop.time()
