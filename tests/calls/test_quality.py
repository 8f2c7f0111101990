"""The quality monitor on a real SFU call: aiortc participants, loss injected on the way
out to one of them, its figures move (and the others' do not), then it recovers."""

from __future__ import annotations

import functools
from typing import Any

import aiohttp
import pytest

from rtchub.config import CallSettings
from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.routes import CALL_MEDIA
from rtchub.media.sfu.loss import DropEvery
from tests.calls.support import WAIT, Call, call

pytestmark = pytest.mark.webrtc

ROOM = "call"


def _lossy(entry: dict[str, Any] | None) -> bool:
    """A whole interval of the 20 % loss injected (a first one may have been partial)."""
    return (entry is not None and (entry["receive_loss"] or 0) > 15
            and any(w.startswith("high packet loss") for w in entry["warnings"]))


def _clean(entry: dict[str, Any] | None) -> bool:
    return (entry is not None and entry["receive_loss"] is not None
            and entry["receive_loss"] < 2
            and not any("packet loss" in w for w in entry["warnings"]))


def _set_loss(c: Call, who: str, every: int | None) -> int:
    """Drop every ``every``-th packet the server sends ``who`` (None: stop dropping)."""
    peer = c.srv.server.app[CALL_MEDIA].peer(ROOM, who)
    count = 0
    for subscription in peer.subscriptions:
        if subscription.downtrack is not None:
            subscription.downtrack.loss = None if every is None else DropEvery(every)
            count += 1
    return count


async def test_loss_to_one_subscriber_moves_its_quality_and_it_recovers() -> None:
    async with call(calls=CallSettings(quality_interval=1.0)) as c:
        people = [await c.join(name) for name in ("alice", "bob", "carol")]
        alice = people[0]
        for person in people:
            others = [p.name for p in people if p is not person]
            await c.until(functools.partial(person.has_media_of, others))
        monitor = c.srv.server.app[CALL_MEDIA].quality
        assert monitor is not None and monitor.interval == 1.0
        seen: dict[str, list[ConnectionQuality]] = {"bob": [], "carol": []}

        def changed(peer_id: str, quality: ConnectionQuality) -> None:
            if peer_id in seen:
                seen[peer_id].append(quality)
            c.changes.notify()

        monitor.on_quality_change(changed)
        # before any loss: both receive cleanly, as the server measures them
        await c.until(lambda: _clean(alice.quality.get("bob"))
                      and _clean(alice.quality.get("carol")), WAIT * 2)
        before = alice.quality["bob"]["score"]

        assert _set_loss(c, "bob", 5) == 4  # one packet in five to bob never leaves
        await c.until(lambda: _lossy(alice.quality.get("bob")), WAIT * 2)
        lossy = alice.quality["bob"]
        assert lossy["score"] < before and lossy["score"] < 80, lossy
        assert lossy["receive_loss"] < 25, lossy  # what was dropped, not more
        assert lossy["grade"] != "good"
        # between intervals, the last reports say it too (what adaptation reads)
        loss, _ = monitor.recent("bob", ROOM)
        assert loss is not None and loss > 5
        assert (monitor.recent("carol", ROOM)[0] or 0) < 2
        # carol, measured in the same interval, keeps receiving cleanly
        assert _clean(alice.quality.get("carol")), alice.quality.get("carol")
        # the Python API saw it too, through on_quality_change and get_quality
        assert any(q.receive_loss is not None and q.receive_loss > 5 for q in seen["bob"])
        latest = monitor.get_quality("bob", ROOM)
        assert latest is not None and latest.peer_id == "bob" and latest.room == ROOM
        assert all(not q.warnings or "packet loss" not in q.warnings[0]
                   for q in seen["carol"] if q.receive_loss is not None and q.receive_loss < 2)

        _set_loss(c, "bob", None)
        await c.until(lambda: _clean(alice.quality.get("bob")), WAIT * 2)
        assert alice.quality["bob"]["score"] > lossy["score"]
        history = monitor.get_history("bob", ROOM)
        assert 3 <= len(history) <= 120
        assert any(q.receive_loss is not None and q.receive_loss > 5 for q in history)
        assert history[-1].to_dict()["peer_id"] == "bob"
        # every participant got the same frames: bob sees his own quality
        bob = people[1]
        await c.until(lambda: "bob" in bob.quality and "alice" in bob.quality)
        # Prometheus: one series per room, gone with the room
        text = await _metrics(c)
        assert 'rtchub_call_quality_score{room="call"}' in text
        assert 'rtchub_call_quality_packet_loss_percent{room="call"}' in text
        assert 'rtchub_call_quality_peers{room="call"} 3.0' in text
        for person in people:
            await person.send({"type": "leave"})
        await c.until(lambda: not c.calls.rooms())
        assert "rtchub_call_quality_score{" not in await _metrics(c)


async def _metrics(c: Call) -> str:
    async with aiohttp.ClientSession() as http, http.get(c.srv.url + "/metrics") as resp:
        return await resp.text()
