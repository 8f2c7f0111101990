"""A participant that publishes nothing (a viewer) still gets everyone's media: an aiortc
client joins an SFU room with only its chat channel, another participant publishes a
camera and a tone, and the viewer decodes both, whichever joined first. A viewer joining
mid-call also learns who speaks from ``joined``."""

from __future__ import annotations

import functools

from tests.calls.support import WAIT, call
from tests.media.sfu_support import next_frame
from tests.voice.audio import ToneTrack


async def test_a_receive_only_participant_decodes_what_others_publish() -> None:
    async with call() as c:
        viewer = await c.join("viewer", media=False)
        ann = await c.join("ann")
        await c.until(functools.partial(viewer.has_media_of, ["ann"]))
        for track in viewer.others_tracks():
            frame = await next_frame(viewer.received[track["track_id"]], WAIT)
            assert frame is not None, track
        assert not viewer.errors and not viewer.failed, (viewer.errors, viewer.failed)
        assert not ann.errors and not ann.failed, (ann.errors, ann.failed)
        assert viewer.tracks and all(t["publisher"] == "ann" for t in viewer.tracks)


async def test_a_viewer_who_joins_after_the_publisher_gets_its_media_too() -> None:
    async with call() as c:
        await c.join("ann")
        viewer = await c.join("viewer", media=False)
        await c.until(functools.partial(viewer.has_media_of, ["ann"]))
        for track in viewer.others_tracks():
            frame = await next_frame(viewer.received[track["track_id"]], WAIT)
            assert frame is not None, track
        assert not viewer.errors and not viewer.failed, (viewer.errors, viewer.failed)


async def test_a_viewer_who_joins_while_someone_speaks_is_told_who() -> None:
    async with call() as c:
        ann = await c.join("ann", sources=lambda n: [ToneTrack(330.0, amplitude=0.0)])
        await c.join("bob", sources=lambda n: [ToneTrack(440.0, amplitude=0.5)])
        await c.until(lambda: ann.speaker == "bob")
        # the choice is made: no active_speaker frame follows, joined says it
        viewer = await c.join("viewer", media=False)
        assert viewer.joined["active_speaker"] == "bob"
        assert viewer.speaker == "bob"
