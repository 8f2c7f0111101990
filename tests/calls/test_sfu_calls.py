"""SFU call rooms end to end: aiortc participants over the rooms WebSocket, media decoded."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pytest
from aiortc import MediaStreamTrack

from rtchub.features.calls.routes import CALL_MEDIA
from tests.calls.light_media import OpusToneTrack, SlowPictureTrack
from tests.calls.support import WAIT, call
from tests.media.sfu_support import next_frame


def light(number: int) -> Sequence[MediaStreamTrack]:
    """A camera at 10 fps and a tone in 60 ms Opus packets (see light_media's doc: eight
    aiortc clients and the server share one Python process in this test)."""
    return [SlowPictureTrack(160, 120, seed=number, fps=10),
            OpusToneTrack(220.0 + 110 * number)]


@pytest.mark.parametrize("n", [2, 4, 8])
async def test_everyone_receives_everyone_else(n: int) -> None:
    async with call() as c:
        sources = light if n > 4 else None
        people = [await c.join(f"p{i}", sources=sources) for i in range(n)]
        names = [p.name for p in people]
        for person in people:
            others = [x for x in names if x != person.name]
            await c.until(functools.partial(person.has_media_of, others))
        # every received track decodes: a video frame and an audio frame from each other
        for person in people:
            for track in person.others_tracks():
                assert not person.failed, (person.name, person.failed)
                frame = await next_frame(person.received[track["track_id"]], WAIT)
                assert frame is not None
        for person in people:
            assert [p["id"] for p in person.participants] == names
            assert not person.errors, person.errors
            assert not person.failed, person.failed
        # everything went through the server: nothing asked again was missing from its cache
        assert c.srv.server.app[CALL_MEDIA].stats.nack_misses == 0
