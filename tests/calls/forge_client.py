"""A client written to xraph/forge's signaling messages: one aiortc peer with the server.

It opens ``/webrtc/signal/{roomID}``, offers what it publishes as ``webrtc.offer`` with an
``sdp`` object, applies the ``webrtc.answer``, and answers the server's own
``webrtc.offer`` (sent when what it receives changes) with ``webrtc.answer``. Frames it
does not handle itself go to a queue the test reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from rtchub.base.changes import Changes
from rtchub.media import aiortc_adapter as adapter
from tests.support import TIMEOUT

LOOPBACK = ("127.0.0.1",)
BUFFER = 2 * 1024 * 1024


class ForgeClient:
    """One participant speaking forge's dialect; see the module docstring."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession
                 ) -> None:
        self.ws = ws
        self.session = session
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.changes = Changes()
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received: dict[str, Any] = {}  # track id (the publisher's) -> remote track
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.server_offers = 0
        self.joined: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._track)
        self.pc.on("connectionstatechange", self.changes.notify)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, url: str) -> ForgeClient:
        """Open the socket and read the ``joined`` frame."""
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url)
        except BaseException:
            await session.close()
            raise
        client = cls(ws, session)
        client.joined = await client.expect("joined")
        return client

    def _track(self, track: Any) -> None:
        self.received[track.id] = track
        self.changes.notify()

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = orjson.loads(msg.data)
            if frame.get("type") == "webrtc.offer" and "from" not in frame:
                task = asyncio.get_running_loop().create_task(self._answer(frame))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif frame.get("type") == "webrtc.answer" and "from" not in frame:
                self.answers.put_nowait(frame)
            else:
                self.frames.put_nowait(frame)
            self.changes.notify()

    async def _answer(self, frame: dict[str, Any]) -> None:
        self.server_offers += 1
        async with self._lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(**frame["sdp"]))
            adapter.configure_ice(self.pc, LOOPBACK, None, BUFFER)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            desc = self.pc.localDescription
            await self.send({"type": "webrtc.answer",
                             "sdp": {"type": desc.type, "sdp": desc.sdp}})
        self.changes.notify()

    async def send(self, obj: Any) -> None:
        """One JSON frame."""
        await self.ws.send_str(orjson.dumps(obj).decode())

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame not handled by the client itself, which must be ``kind``."""
        frame = await asyncio.wait_for(self.frames.get(), timeout)
        assert frame.get("type") == kind, f"expected {kind!r}, got {frame!r}"
        return frame

    async def next_of(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame of ``kind``, skipping state frames of other kinds."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if frame.get("type") == kind:
                    return frame

    def publish(self, track: MediaStreamTrack) -> None:
        """Send ``track`` (from the next offer on)."""
        self.pc.addTransceiver(track, direction="sendonly")

    async def offer(self) -> dict[str, Any]:
        """Offer what is published and apply the server's ``webrtc.answer`` (returned)."""
        async with self._lock:
            adapter.configure_ice(self.pc, LOOPBACK, None, BUFFER)
            await self.pc.setLocalDescription(await self.pc.createOffer())
            desc = self.pc.localDescription
            await self.send({"type": "webrtc.offer", "sdp": {"type": desc.type,
                                                             "sdp": desc.sdp}})
            answer = await asyncio.wait_for(self.answers.get(), TIMEOUT * 2)
            await self.pc.setRemoteDescription(RTCSessionDescription(**answer["sdp"]))
        self.changes.notify()
        return answer

    async def until(self, condition: Callable[[], bool], timeout: float = TIMEOUT * 2
                    ) -> None:
        """Wait (without polling) until ``condition`` holds."""
        try:
            await self.changes.wait_for(condition, timeout)
        except TimeoutError:
            raise AssertionError(f"not reached within {timeout}s") from None

    async def close(self) -> None:
        """Close the socket and the peer."""
        await self.ws.close()
        self._reader.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in [self._reader, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.pc.close()
        await self.session.close()
