"""Call-room requests over the wire: subscriptions, mute, screen share, rejoin, chat,
recording and the errors, with real aiortc participants in SFU rooms."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import av

from rtchub.config import CallSettings
from rtchub.features.calls.rules import Grants
from tests.calls.support import WAIT, call
from tests.media.sfu_support import PictureTrack, next_frame
from tests.support import WsClient


class _AllGrants:
    """An authorizer that lets everyone record and moderate."""

    def authorize(self, room: str, token: str | None, requested: str | None) -> Grants:
        return Grants(requested, room, True, True, True, True)


async def test_unsubscribe_and_subscribe_change_what_arrives() -> None:
    async with call() as c:
        ann = await c.join("ann")
        bob = await c.join("bob")
        await c.until(lambda: bob.has_media_of(["ann"]))
        video = next(t for t in bob.others_tracks() if t["kind"] == "video")
        offers = bob.server_offers
        await bob.send({"type": "unsubscribe", "track_id": video["track_id"]})
        await c.until(lambda: bob.server_offers > offers)
        await c.until(lambda: any(t.currentDirection == "inactive"
                                  for t in bob.pc.getTransceivers()))
        assert video["track_id"] not in c.calls.subscriptions("call", "bob")
        offers = bob.server_offers
        await bob.send({"type": "subscribe", "track_id": video["track_id"]})
        await c.until(lambda: bob.server_offers > offers)
        received = bob.received[video["track_id"]]
        assert (await next_frame(received, WAIT)).width == 160
        assert ann.errors == [] and bob.errors == []


async def test_mute_media_state_and_screen_share_are_seen_by_others() -> None:
    async with call() as c:
        c.calls.authorizer = _AllGrants()
        ann = await c.join("ann")
        bob = await c.join("bob")
        await c.until(lambda: bob.has_media_of(["ann"]))
        await ann.send({"type": "media_state", "audio": False})
        await c.until(lambda: any(p["id"] == "ann" and not p["audio"]
                                  for p in bob.participants))
        await c.until(lambda: any(t["publisher"] == "ann" and t["kind"] == "audio"
                                  and t["muted"] for t in bob.tracks))
        # an admin mutes bob's video: everyone sees it, bob cannot lift it himself
        await ann.send({"type": "mute", "participant": "bob", "kind": "video"})
        await c.until(lambda: any(p["id"] == "bob" and not p["video"]
                                  for p in ann.participants))
        await bob.send({"type": "media_state", "video": True})
        await bob.sync()
        assert not c.calls.participant("call", "bob").video
        await ann.send({"type": "unmute", "participant": "bob", "kind": "video"})
        await c.until(lambda: any(p["id"] == "bob" and p["video"] for p in ann.participants))
        # screen share: a third track, labelled before the offer
        screen = PictureTrack(320, 180, seed=9)
        await ann.send({"type": "publish", "track_id": screen.id, "source": "screen"})
        await ann.send({"type": "media_state", "screen": True})
        ann.publish(screen)
        await ann.negotiate()
        await c.until(lambda: any(t["track_id"] == screen.id and t["source"] == "screen"
                                  for t in bob.tracks))
        await c.until(lambda: screen.id in bob.received)
        assert (await next_frame(bob.received[screen.id], WAIT)).width == 320


async def test_a_participant_that_drops_and_rejoins_is_seen_by_all() -> None:
    async with call() as c:
        ann = await c.join("ann")
        bob = await c.join("bob")
        cy = await c.join("cy")
        await c.until(lambda: ann.has_media_of(["bob", "cy"]))
        await bob.close()
        c.people.remove(bob)
        await c.until(lambda: [p["id"] for p in ann.participants] == ["ann", "cy"]
                      and [p["id"] for p in cy.participants] == ["ann", "cy"])
        await c.until(lambda: all(t["publisher"] != "bob" for t in ann.tracks + cy.tracks))
        bob = await c.join("bob")
        # everyone sees bob again; bob gets everyone's media. (That ann and cy decode bob's
        # new tracks is not asserted: the server reuses their sections left inactive by
        # bob's old tracks, and aiortc as a client fires no new "track" event for a reused
        # transceiver; a browser does.)
        await c.until(functools.partial(bob.has_media_of, ["ann", "cy"]))
        for person in (ann, cy, bob):
            await c.until(lambda person=person: sorted(  # type: ignore[misc]
                p["id"] for p in person.participants) == ["ann", "bob", "cy"])
            await c.until(lambda person=person: {  # type: ignore[misc]
                (t["publisher"], t["kind"]) for t in person.tracks} >= {
                ("bob", "audio"), ("bob", "video")})
        for track in bob.others_tracks():
            await next_frame(bob.received[track["track_id"]], WAIT)


async def test_chat_goes_once_to_each_over_the_data_channel_or_the_socket() -> None:
    async with call() as c:
        ann = await c.join("ann", media=False)
        bob = await c.join("bob", media=False)
        await c.until(lambda: ann.channel is not None and ann.channel.readyState == "open")
        assert ann.channel is not None
        ann.channel.send(json.dumps({"text": "over the channel"}))
        await c.until(lambda: len(bob.chat_dc) == 1)
        assert bob.chat_dc[0]["from"] == "ann" and bob.chat_dc[0]["text"] == "over the channel"
        await bob.send({"type": "chat", "text": "over the socket"})
        await c.until(lambda: len(ann.chat_dc) == 1)
        assert ann.chat_dc[0]["text"] == "over the socket"
        # a participant without a chat channel gets chat frames on its socket
        cy = await c.connect("cy")
        await cy.send({"type": "join", "room": "call", "from": "cy", "topology": "sfu"})
        await c.until(lambda: bool(cy.joined))
        ann.channel.send("plain text")
        await c.until(lambda: len(cy.chat_ws) == 1)
        assert cy.chat_ws[0]["from"] == "ann" and cy.chat_ws[0]["text"] == "plain text"
        await bob.sync()
        assert [m["text"] for m in bob.chat_dc] == ["over the channel", "plain text"]
        assert bob.chat_ws == []


async def test_recording_over_the_wire_writes_files_that_decode(tmp_path: Path) -> None:
    async with call(recordings=str(tmp_path)) as c:
        ann = await c.join("ann")
        await ann.send({"type": "record", "action": "start"})
        await c.until(lambda: bool(ann.errors))
        assert ann.errors[0]["code"] == "unauthorized"   # dev-mode guests may not record
        c.calls.authorizer = _AllGrants()
        bob = await c.join("bob")
        await c.until(lambda: bob.has_media_of(["ann"]))
        await bob.send({"type": "record", "action": "start"})
        await c.until(lambda: ann.recording.get("state") == "recording")
        frames = 0
        received = bob.received[next(t["track_id"] for t in bob.others_tracks()
                                     if t["kind"] == "video")]
        while frames < 60:   # two seconds of ann's camera through the SFU
            await next_frame(received, WAIT)
            frames += 1
        await bob.send({"type": "record", "action": "stop"})
        await c.until(lambda: ann.recording.get("state") == "stopped")
        directory = Path(ann.recording["directory"])
        manifest = json.loads((directory / "manifest.json").read_text())
        videos = [t for t in manifest["tracks"] if t["kind"] == "video"]
        assert {t["participant"] for t in videos} == {"ann", "bob"}
        for entry in videos:
            with av.open(str(directory / entry["file"])) as container:
                decoded = [f for f in container.decode(video=0)]
            assert len(decoded) >= 10
            last = decoded[-1]
            assert last.pts is not None and last.time_base is not None
            seconds = float(last.pts * last.time_base)
            span = entry["end_offset"] - entry["start_offset"]
            # the file's media time fits its span of the recording (a sender that lags under
            # load ends its file before the stop, never after), and it holds the seconds
            # bob watched go by
            assert 1.0 <= seconds <= span + 0.1, (seconds, span, entry, len(decoded))


async def test_call_room_errors() -> None:
    async with call() as c:
        ann = await c.join("ann", media=False)
        async with _client(c) as mesh:
            await mesh.send({"type": "join", "room": "plain", "from": "m"})
            assert (await mesh.expect("joined"))["topology"] == "mesh"
            await mesh.expect("room_members")
            await mesh.send({"type": "subscribe", "track_id": "x"})
            assert (await mesh.expect("error"))["code"] == "sfu_not_enabled"
            await mesh.send({"type": "leave"})
            await mesh.send({"type": "join", "room": "call", "from": "m", "topology": "mesh"})
            assert (await mesh.expect("error"))["code"] == "topology_mismatch"
        await ann.send({"type": "subscribe", "track_id": "nope"})
        await ann.send({"type": "set_quality", "track_id": "nope", "quality": "ultra"})
        await ann.send({"type": "mute", "participant": "ann"})
        await ann.sync()
        assert [e["code"] for e in ann.errors] == ["track_not_found", "invalid_quality",
                                                    "unauthorized"]


class _client:
    """A plain rooms client on ``/ws/rooms``."""

    def __init__(self, c: object) -> None:
        self._url = c.srv.ws_url + "/rooms"  # type: ignore[attr-defined]
        self._ws: WsClient | None = None

    async def __aenter__(self) -> WsClient:
        self._ws = await WsClient.connect(self._url)
        return self._ws

    async def __aexit__(self, *exc: object) -> None:
        assert self._ws is not None
        await self._ws.close()


async def test_call_max_members_bounds_a_call_room() -> None:
    """CALL_MAX_MEMBERS (here 1) is what the call service enforces: the next join is
    refused with room_full."""
    async with call(calls=CallSettings(max_members=1)) as c:
        ann, ben = await c.connect("ann"), await c.connect("ben")
        await ann.send({"type": "join", "room": "small", "from": "ann", "topology": "sfu"})
        await c.until(lambda: bool(ann.joined))
        await ben.send({"type": "join", "room": "small", "from": "ben", "topology": "sfu"})
        await c.until(lambda: bool(ben.errors))
        assert ben.errors[0]["code"] == "room_full" and not ben.joined
