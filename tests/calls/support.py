"""Real aiortc participants of call rooms, signalled over the rooms WebSocket.

A :class:`Participant` is what a browser in SFU mode is: one WebSocket on ``/ws/rooms``
speaking the call-room frames, one aiortc peer connection with the server, a "chat" data
channel, published tracks, and the room state the server broadcasts (``participants``,
``tracks``, ``active_speaker``, ``recording``). It negotiates as a polite peer: its own
offer waits for ``sfu_answer``, and after ``sfu_ignored`` it answers the server's offer
first and offers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from rtchub.base.changes import Changes
from rtchub.features.calls.routes import CALL_MEDIA, CALLS
from rtchub.features.calls.service import CallService
from rtchub.media import aiortc_adapter as adapter
from tests.media.sfu_support import PictureTrack
from tests.support import TIMEOUT, Running, WsClient, running
from tests.voice.audio import ToneTrack

LOOPBACK = ("127.0.0.1",)
BUFFER = 1024 * 1024
WAIT = TIMEOUT * 2


@dataclass
class Participant:
    """One participant: its socket, its peer connection, what it knows and receives."""

    name: str
    ws: WsClient
    changes: Changes
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration(
        iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)))
    joined: dict[str, Any] = field(default_factory=dict)
    participants: list[dict[str, Any]] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)
    speaker: str | None = None
    recording: dict[str, Any] = field(default_factory=dict)
    chat_ws: list[dict[str, Any]] = field(default_factory=list)
    chat_dc: list[dict[str, Any]] = field(default_factory=list)
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last quality frame
    errors: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)  # sfu_failed frames
    received: dict[str, MediaStreamTrack] = field(default_factory=dict)  # by track id
    published: list[MediaStreamTrack] = field(default_factory=list)
    _unsent: list[MediaStreamTrack] = field(default_factory=list)  # for the next offer
    server_offers: int = 0
    ignored: int = 0
    pongs: int = 0
    channel: RTCDataChannel | None = None
    sdp_filter: Callable[[str], str] | None = None  # rewrites the server's SDP
    offer_filter: Callable[[str], str] | None = None  # rewrites the offers it sends
    _reply: asyncio.Future[dict[str, Any]] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        @self.pc.on("track")
        def got(track: MediaStreamTrack) -> None:
            self.received[track.id] = track
            self.changes.notify()

        self.pc.on("connectionstatechange", self.changes.notify)
        self._tasks.append(asyncio.get_running_loop().create_task(self._read()))

    # -- the socket ----------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            msg = await self.ws.recv(timeout=3600)
            kind = msg.get("type")
            if kind == "sfu_offer":
                self._tasks.append(asyncio.get_running_loop().create_task(
                    self._answer(msg["sdp"])))
            elif kind in ("sfu_answer", "sfu_ignored") and self._reply is not None:
                if not self._reply.done():
                    self._reply.set_result(msg)
            elif kind == "joined":
                self.joined = msg
                self.participants = msg.get("participants", [])
                self.tracks = msg.get("tracks", [])
                self.recording = msg.get("recording", {})
                self.speaker = msg.get("active_speaker")
            elif kind == "participants":
                self.participants = msg["participants"]
            elif kind == "tracks":
                self.tracks = msg["tracks"]
            elif kind == "active_speaker":
                self.speaker = msg["participant"]
            elif kind == "recording":
                self.recording = msg
            elif kind == "chat":
                self.chat_ws.append(msg)
            elif kind == "quality":
                self.quality = {p["id"]: p for p in msg["participants"]}
            elif kind == "pong":
                self.pongs += 1
            elif kind == "sfu_failed":
                self.failed.append(msg)
            elif kind == "error":
                self.errors.append(msg)
                if self._reply is not None and not self._reply.done():
                    self._reply.set_result(msg)
            self.changes.notify()

    async def send(self, obj: dict[str, Any]) -> None:
        """Send one frame."""
        await self.ws.send(obj)

    def _offered_since(self, count: int) -> bool:
        return self.server_offers > count

    async def sync(self) -> None:
        """Return once everything sent before was applied (a ping's pong arrived)."""
        pongs = self.pongs
        await self.send({"type": "ping"})
        await self.changes.wait_for(lambda: self.pongs > pongs, WAIT)

    async def _answer(self, sdp: str) -> None:
        async with self._lock:
            self.server_offers += 1
            if self.sdp_filter is not None:
                sdp = self.sdp_filter(sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            adapter.configure_ice(self.pc, LOOPBACK, None, BUFFER)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.send({"type": "sfu_answer", "sdp": self.pc.localDescription.sdp})
        self.changes.notify()

    # -- negotiation ---------------------------------------------------------------------

    def open_chat(self) -> RTCDataChannel:
        """The "chat" data channel (negotiated at the next offer)."""
        channel = self.pc.createDataChannel("chat")

        @channel.on("message")
        def message(data: str | bytes) -> None:
            self.chat_dc.append(json.loads(data))
            self.changes.notify()

        channel.on("open", self.changes.notify)
        self.channel = channel
        return channel

    def publish(self, track: MediaStreamTrack) -> None:
        """Send ``track`` (at the next :meth:`negotiate`, which adds its transceiver: one
        added while an answer to the server's offer is being made would be taken for a
        section of that offer, as aiortc matches a new remote section to any unassociated
        transceiver of its kind)."""
        self._unsent.append(track)
        self.published.append(track)

    async def negotiate(self) -> None:
        """Offer what this participant has now; after ``sfu_ignored``, let the server's
        offer through and try again."""
        while True:
            async with self._lock:
                while self._unsent:
                    self.pc.addTransceiver(self._unsent.pop(0), direction="sendonly")
                adapter.configure_ice(self.pc, LOOPBACK, None, BUFFER)
                first = self.pc.localDescription is None
                offer = await self.pc.createOffer()
                if first:   # the first offer needs candidates: gather by applying it
                    await self.pc.setLocalDescription(offer)
                    offer = self.pc.localDescription
                self._reply = asyncio.get_running_loop().create_future()
                sent = offer.sdp if self.offer_filter is None else self.offer_filter(offer.sdp)
                await self.send({"type": "sfu_offer", "sdp": sent})
                reply = await asyncio.wait_for(self._reply, WAIT)
                self._reply = None
                if reply["type"] == "error":
                    raise AssertionError(f"the offer was refused: {reply}")
                if reply["type"] == "sfu_answer":
                    if not first:
                        await self.pc.setLocalDescription(offer)
                    answer = reply["sdp"]
                    if self.sdp_filter is not None:
                        answer = self.sdp_filter(answer)
                    await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
                    self.changes.notify()
                    return
                self.ignored += 1
                offers = self.server_offers
            # glare: the server's offer goes first
            await self.changes.wait_for(functools.partial(self._offered_since, offers), WAIT)

    # -- what it knows -------------------------------------------------------------------

    def others_tracks(self) -> list[dict[str, Any]]:
        """Tracks the server announced that others publish."""
        return [t for t in self.tracks if t["publisher"] != self.name]

    def has_media_of(self, others: list[str]) -> bool:
        """An audio and a video track announced and received from each of ``others``."""
        for other in others:
            mine = [t for t in self.tracks if t["publisher"] == other]
            if {t["kind"] for t in mine} != {"audio", "video"}:
                return False
            if not all(t["track_id"] in self.received for t in mine):
                return False
        return True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for track in self.published:
            track.stop()
        await self.pc.close()
        await self.ws.close()


@dataclass
class Call:
    """A running server and the participants of its call rooms."""

    srv: Running
    changes: Changes = field(default_factory=Changes)
    people: list[Participant] = field(default_factory=list)
    sdp_filter: Callable[[str], str] | None = None  # for every participant connected

    @property
    def calls(self) -> CallService:
        """The server's call service."""
        return self.srv.server.app[CALLS]

    async def connect(self, name: str) -> Participant:
        """A participant connected to ``/ws/rooms``, not in a room yet."""
        ws = await WsClient.connect(self.srv.ws_url + "/rooms")
        person = Participant(name, ws, self.changes, sdp_filter=self.sdp_filter)
        self.people.append(person)
        return person

    async def join(self, name: str, room: str = "call", *, media: bool = True,
                   size: tuple[int, int] = (160, 120),
                   sources: Callable[[int], Sequence[MediaStreamTrack]] | None = None,
                   **fields: Any) -> Participant:
        """Connect, join ``room`` as an SFU participant, open chat and negotiate, then
        publish a camera and a tone (when ``media``; ``sources`` makes other tracks from
        the participant's number) and negotiate again."""
        person = await self.connect(name)
        await person.send({"type": "join", "room": room, "from": name, "topology": "sfu",
                           **fields})
        await self.until(lambda: bool(person.joined) or bool(person.errors))
        if person.errors:
            raise AssertionError(f"join refused: {person.errors}")
        # the chat channel first, alone: its section carries the bundle (docs/sfu-media.md)
        channel = person.open_chat()
        await person.negotiate()
        # aiortc (the client) starts its senders only on a connected transport
        await self.until(lambda: channel.readyState == "open")
        if media:
            number = len(self.people)
            tracks = ([PictureTrack(*size, seed=number), ToneTrack(220.0 + 110 * number)]
                      if sources is None else sources(number))
            for track in tracks:
                person.publish(track)
            await person.negotiate()
        return person

    async def until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait, without polling, until ``condition`` holds."""
        try:
            await self.changes.wait_for(condition, timeout)
        except TimeoutError:
            raise AssertionError(f"not reached within {timeout}s") from None

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.people), return_exceptions=True)


@contextlib.asynccontextmanager
async def call(recordings: str | None = None, **overrides: Any) -> AsyncIterator[Call]:
    """A server whose SFU peers gather on loopback, and a :class:`Call` on it."""
    overrides.setdefault("node_ips", LOOPBACK)
    async with running(**overrides) as srv:
        if recordings is not None:
            srv.server.app[CALL_MEDIA].recordings = Path(recordings)
        c = Call(srv)
        try:
            yield c
        finally:
            await c.close()
