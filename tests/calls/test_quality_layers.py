"""``set_quality`` over the wire sets the most a subscriber is forwarded of a track:
low / medium / high are simulcast layers 0 / 1 / 2, and new subscribers start low.
(The layers themselves are proven with Chromium in tests/media/test_sfu_simulcast_browser.py;
aiortc clients send one layer, where every ceiling forwards it.)"""

from __future__ import annotations

from rtchub.features.calls.routes import CALL_MEDIA
from tests.calls.support import call
from tests.media.sfu_support import next_frame


async def test_set_quality_is_the_subscribers_layer_ceiling_and_new_subscribers_start_low(
) -> None:
    async with call() as c:
        ann = await c.join("ann")
        bob = await c.join("bob")
        await c.until(lambda: bob.has_media_of(["ann"]))
        media = c.srv.server.app[CALL_MEDIA]
        video = next(t for t in bob.others_tracks() if t["kind"] == "video")
        track_id = video["track_id"]
        downtrack = media.downtrack("call", "bob", track_id)
        assert downtrack is not None and downtrack.layers is not None
        assert downtrack.layers.ceiling == 0
        assert c.calls.get_quality("call", track_id, "bob") == "low"
        for quality, layer in (("high", 2), ("medium", 1), ("low", 0)):
            await bob.send({"type": "set_quality", "track_id": track_id, "quality": quality})
            await bob.sync()
            assert downtrack.layers.ceiling == layer
            assert c.calls.get_quality("call", track_id, "bob") == quality
        # one layer published: whatever the ceiling, that layer is forwarded
        assert await next_frame(bob.received[track_id]) is not None
        assert downtrack.layers.current == 0
        # ann's own view of bob's camera is untouched
        ann_video = next(t for t in ann.others_tracks() if t["kind"] == "video")
        theirs = media.downtrack("call", "ann", ann_video["track_id"])
        assert theirs is not None and theirs.layers is not None
        assert theirs.layers.ceiling == 0
        assert not bob.errors and not ann.errors
