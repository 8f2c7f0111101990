"""What participants of an SFU call perceive with real aiortc peers: the loud one becomes
the active speaker for everyone, and a participant who drops and rejoins is decoded again.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests.calls.support import WAIT, Participant, call
from tests.media.sfu_support import PictureTrack, next_frame
from tests.voice.audio import ToneTrack

pytestmark = pytest.mark.webrtc


def receiver_of(person: Participant, track_id: str) -> Any:
    """The track ``person`` receives ``track_id`` on: by its "track" event, or, on a
    section reused for it (aiortc fires no second "track" event there), by the section
    whose ``a=msid`` names it in the server's last offer."""
    if track_id in person.received:
        return person.received[track_id]
    sdp = person.pc.remoteDescription.sdp if person.pc.remoteDescription else ""
    mid = None
    for part in sdp.split("\r\nm=")[1:]:
        lines = part.split("\r\n")
        if any(line.startswith("a=msid:") and line.split()[-1] == track_id for line in lines):
            mid = next((line[6:] for line in lines if line.startswith("a=mid:")), None)
    for transceiver in person.pc.getTransceivers():
        if mid is not None and transceiver.mid == mid:
            return transceiver.receiver.track
    return None


async def test_the_loud_participant_becomes_the_active_speaker_for_the_others() -> None:
    async with call() as c:
        def quiet(number: int) -> list[Any]:
            return [ToneTrack(330.0, amplitude=0.0)]

        def loud(number: int) -> list[Any]:
            return [ToneTrack(440.0, amplitude=0.5)]

        ann = await c.join("ann", sources=quiet)
        bob = await c.join("bob", sources=loud)
        cy = await c.join("cy", sources=quiet)
        for person in (ann, cy):
            await c.until(lambda person=person: person.speaker == "bob")  # type: ignore[misc]
        # silence (level 127) never makes a speaker of ann or cy
        assert bob.speaker in (None, "bob")


async def test_after_a_drop_and_rejoin_the_others_decode_the_new_tracks() -> None:
    async with call() as c:
        ann = await c.join("ann")
        bob = await c.join("bob")
        cy = await c.join("cy")
        await c.until(lambda: ann.has_media_of(["bob", "cy"]) and cy.has_media_of(["bob"]))
        old = {t["track_id"] for t in ann.tracks if t["publisher"] == "bob"}
        await bob.close()
        c.people.remove(bob)
        await c.until(lambda: all(t["publisher"] != "bob" for t in ann.tracks + cy.tracks))
        # bob's new camera has another size: a frame of it cannot be one of his old ones
        bob = await c.join("bob", sources=lambda number: [PictureTrack(176, 144, seed=99),
                                                           ToneTrack(990.0)])
        for person in (ann, cy):
            new = functools.partial(lambda p: [t for t in p.tracks if t["publisher"] == "bob"],
                                    person)
            await c.until(lambda new=new: len(new()) == 2)  # type: ignore[misc]
            tracks = new()
            assert not old & {t["track_id"] for t in tracks}
            await c.until(lambda person=person, tracks=tracks: all(  # type: ignore[misc]
                receiver_of(person, t["track_id"]) is not None for t in tracks))
            video = next(t for t in tracks if t["kind"] == "video")
            receiver = receiver_of(person, video["track_id"])
            frame = await next_frame(receiver, WAIT)
            while (frame.width, frame.height) != (176, 144):  # frames of old bob, queued
                assert (frame.width, frame.height) == (160, 120)
                frame = await next_frame(receiver, WAIT)
            audio = next(t for t in tracks if t["kind"] == "audio")
            assert await next_frame(receiver_of(person, audio["track_id"]), WAIT) is not None
