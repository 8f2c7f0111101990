"""RTC_CONSENT_TIMEOUT: the server's peers drop a browser that answers no ICE consent check
for that long (RFC 7675), and keep one that answers late (aioice alone waits 0.5 s for
each answer: a starved page lost its call that way)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aioice import Connection

from rtchub.config import ConfigError, load
from rtchub.features.calls.routes import CALL_MEDIA
from rtchub.media.aiortc_adapter.consent import check_window
from tests.calls.support import Participant, call


def _ice(person: Participant) -> Connection:
    """The client's one (bundled) aioice connection."""
    [transceiver, *_] = person.pc.getTransceivers()
    connection: Connection = transceiver.sender.transport.transport._connection
    return connection


def test_the_consent_timeout_defaults_to_thirty_seconds_and_is_bounded() -> None:
    assert load({}).consent_timeout == 30.0
    assert load({"RTC_CONSENT_TIMEOUT": "1s"}).consent_timeout == 1.0
    assert load({"RTC_CONSENT_TIMEOUT": "10m"}).consent_timeout == 600.0
    for bad in ("999ms", "10m1s", "soon"):
        with pytest.raises(ConfigError) as refused:
            load({"RTC_CONSENT_TIMEOUT": bad})
        assert "RTC_CONSENT_TIMEOUT" in str(refused.value)
        assert "between 1s and 10m" in str(refused.value) or "duration" in str(refused.value)


def test_a_check_waits_for_its_answer_up_to_the_timeout() -> None:
    # (wait, retransmissions): doubling from 0.5 s, at most 7.5 s
    assert check_window(1) == (0.5, 0)
    assert check_window(1.5) == (1.5, 1)
    assert check_window(3) == (1.5, 1)
    assert check_window(3.5) == (3.5, 2)
    assert check_window(7.4) == (3.5, 2)
    assert check_window(7.5) == (7.5, 3)
    assert check_window(30) == (7.5, 3)
    assert check_window(600) == (7.5, 3)


@pytest.mark.webrtc
async def test_a_peer_that_answers_no_check_is_dropped_after_the_timeout() -> None:
    async with call(consent_timeout=2.0) as c:
        assert c.srv.server.app[CALL_MEDIA].config.consent_timeout == 2.0
        ann = await c.join("ann")
        bob = await c.join("bob")
        await c.until(lambda: bob.has_media_of(["ann"]))
        # ann's browser stops answering the server's checks (media still flows)
        loop = asyncio.get_running_loop()
        silent_since = loop.time()
        _ice(ann).request_received = lambda *args: None  # type: ignore[method-assign]
        await c.until(lambda: bool(ann.failed), timeout=30)
        waited = loop.time() - silent_since
        # the last answered check was at most one interval (1.2 x timeout / 6) before
        assert waited >= 2.0 - 0.4, waited
        assert ann.failed[0]["code"] == "connection_failed", ann.failed
        assert "answered no consent check for 2 s" in ann.failed[0]["message"], ann.failed
        assert c.srv.server.app[CALL_MEDIA].peer("call", "ann").closed
        assert bob.failed == []


@pytest.mark.webrtc
async def test_a_peer_that_answers_every_check_late_keeps_its_call() -> None:
    # 4 s: a check every 0.53-0.8 s, each waiting up to 3.5 s; answers come 0.8 s late,
    # after aioice's own 0.5 s, and the call outlives the timeout several times over
    async with call(consent_timeout=4.0) as c:
        ann = await c.join("ann")
        bob = await c.join("bob")
        await c.until(lambda: bob.has_media_of(["ann"]))
        ice = _ice(ann)
        answer = ice.request_received
        loop = asyncio.get_running_loop()
        late: list[float] = []

        def answer_late(*args: Any) -> None:
            late.append(loop.time())
            loop.call_later(0.8, answer, *args)
            c.changes.notify()

        ice.request_received = answer_late  # type: ignore[method-assign,assignment]
        start = loop.time()
        await c.until(lambda: (bool(late) and late[-1] - start > 3 * 4.0) or bool(ann.failed),
                      timeout=60)
        assert ann.failed == [] and bob.failed == []
        assert c.srv.server.app[CALL_MEDIA].peer("call", "ann").connection_state == "connected"
        assert len(late) >= 10, late  # the server kept checking all along
