"""A participant whose server peer has failed (it is about to join again) does not stop
anyone else from publishing or subscribing: the new track is refused to nobody and
reaches everyone else (seen with eight Chromium pages under load, where such an error
made the publisher join again too, and the next, in a chain)."""

from __future__ import annotations

import pytest

from rtchub.features.calls.routes import CALL_MEDIA
from tests.calls.support import call

pytestmark = pytest.mark.webrtc


async def test_a_publisher_is_not_refused_for_a_subscriber_whose_peer_failed() -> None:
    async with call() as c:
        ann = await c.join("ann", media=False)
        bob = await c.join("bob")
        await c.until(lambda: ann.has_media_of(["bob"]))
        # ann's server peer closes, as a failed one does; ann is still in the room
        await c.srv.server.app[CALL_MEDIA].peer("call", "ann").close()
        # cat publishes: ann (first in the room) cannot be subscribed, bob is
        cat = await c.join("cat")
        await c.until(lambda: bob.has_media_of(["cat"]) and cat.has_media_of(["bob"]))
        assert cat.errors == [] and bob.errors == []
        assert {t["publisher"] for t in ann.tracks} == {"bob", "cat"}
