"""SFU call rooms end to end: aiortc participants over the rooms WebSocket, media decoded."""

from __future__ import annotations

import functools

import pytest

from tests.calls.support import WAIT, call
from tests.media.sfu_support import next_frame


@pytest.mark.parametrize("n", [2, 4])  # 8: open, see the report of branch calls
async def test_everyone_receives_everyone_else(n: int) -> None:
    async with call() as c:
        people = [await c.join(f"p{i}") for i in range(n)]
        names = [p.name for p in people]
        for person in people:
            others = [x for x in names if x != person.name]
            await c.until(functools.partial(person.has_media_of, others))
        # every received track decodes: a video frame and an audio frame from each other
        for person in people:
            for track in person.others_tracks():
                frame = await next_frame(person.received[track["track_id"]], WAIT)
                assert frame is not None
        for person in people:
            assert [p["id"] for p in person.participants] == names
            assert not person.errors, person.errors
