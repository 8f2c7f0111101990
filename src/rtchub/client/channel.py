"""The data channel as a transfer uses it: control messages, data, and deadlines.

Every wait here ends: with what it waited for, with :class:`Stalled` when
nothing moved for ``stall`` seconds, or with the reason the transfer cannot go
on (:meth:`Channel.fail`: the channel closed, the other side cancelled, the
relay saw it leave). Control messages are JSON text; the other side's
``{"kind": "abort", "reason"}`` fails the channel whenever it arrives, even
while this side is only sending.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import orjson
from aiortc import RTCDataChannel

from rtchub.client.signaling import PEER_LEFT_GRACE, ClientError, PeerGone, Stalled

__all__ = ["HIGH_WATER", "LOW_WATER", "Channel"]

T = TypeVar("T")

#: The sender queues up to this many bytes in aiortc, and resumes at LOW_WATER.
HIGH_WATER: Final = 4 * 1024 * 1024
LOW_WATER: Final = 1 * 1024 * 1024


class Channel:
    """One open data channel; ``peer`` names the other side in messages."""

    def __init__(self, raw: RTCDataChannel, peer: str, stall: float) -> None:
        self.raw = raw
        self.queued = 0  # data bytes handed to aiortc
        self._peer = peer
        self._stall = stall
        self._inbox: deque[str | bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: ClientError | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        raw.bufferedAmountLowThreshold = LOW_WATER
        raw.on("message", self._on_message)
        raw.on("close", self._on_close)
        raw.on("bufferedamountlow", self._wake)
        raw.on("open", self._wake)

    # -- events -----------------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            try:
                value = orjson.loads(message)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict) and value.get("kind") == "abort":
                self.fail(PeerGone(str(value.get("reason") or f"{self._peer} stopped")))
                return
        self._inbox.append(message)
        self._wake()

    def _on_close(self) -> None:
        # the other side's reason (an abort through the relay) may be a moment behind
        # the close: let it arrive first
        self._wake()
        if self._grace is None:
            self._grace = asyncio.get_running_loop().call_later(
                PEER_LEFT_GRACE, self.fail, PeerGone(f"{self._peer} closed the connection"))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: ClientError) -> None:
        """End every wait, now and later, with ``error`` (the first reason wins)."""
        if self._error is None:
            self._error = error
            self._failed.set_result(None)
        self._wake()

    async def guard(self, work: Awaitable[T]) -> T:
        """``work``'s result, unless the transfer fails first: then ``work`` is cancelled
        and the failure raised (for waits on something else: a person, a pipe)."""
        task = asyncio.ensure_future(work)
        either: set[asyncio.Future[Any]] = {task, self._failed}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled() and self._error is not None:
            raise self._error
        return task.result()

    async def _wait(self, timeout: float) -> bool:
        """Until the next event; False when ``timeout`` passed without one."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            return False
        finally:
            self._waiter = None
        return True

    async def opened(self, timeout: float, late: str) -> None:
        """Until the channel is open; ``late`` is the message when it takes over
        ``timeout`` seconds."""
        while self.raw.readyState != "open":
            if self._error is not None:
                raise self._error
            if not await self._wait(timeout):
                raise Stalled(late)

    # -- receiving ----------------------------------------------------------------------

    async def receive(self, timeout: float, late: str) -> str | bytes:
        """The next message (what arrived before a failure comes first); ``late`` is the
        message when none comes within ``timeout`` seconds."""
        while not self._inbox:
            if self._error is not None:
                raise self._error
            if not await self._wait(timeout):
                raise Stalled(late)
        return self._inbox.popleft()

    async def control(self, timeout: float, late: str) -> dict[str, Any]:
        """The next message, which must be a JSON object."""
        item = await self.receive(timeout, late)
        try:
            value = orjson.loads(item) if isinstance(item, str) else None
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise ClientError(f"{self._peer} sent something out of turn; stopped")
        return value

    async def closed(self, timeout: float) -> None:
        """Until the other side closes (or ``timeout`` passes): lets our last message
        reach it before we close."""
        while self._error is None and self.raw.readyState != "closed":
            if not await self._wait(timeout):
                return

    # -- sending ------------------------------------------------------------------------

    def send_control(self, obj: dict[str, Any]) -> None:
        """Queue a control message (after any data already queued)."""
        if self.raw.readyState != "open":
            raise self._error or PeerGone(f"{self._peer} closed the connection")
        self.raw.send(orjson.dumps(obj).decode())

    async def send_data(self, data: bytes) -> None:
        """Queue ``data``; above HIGH_WATER queued bytes, wait until LOW_WATER."""
        if self.raw.readyState != "open":
            await self._why_closed()
        if self._error is not None:
            raise self._error
        self.raw.send(data)
        self.queued += len(data)
        if self.raw.bufferedAmount > HIGH_WATER:
            await self.drain(LOW_WATER)

    async def drain(self, level: int = 0, moved: Callable[[], None] | None = None) -> None:
        """Wait until at most ``level`` bytes are still queued (``moved`` hears of each
        step). :class:`Stalled` when the queue did not shrink for ``stall`` seconds: the
        other side stopped taking data."""
        raw = self.raw
        raw.bufferedAmountLowThreshold = level
        try:
            while raw.bufferedAmount > level:
                if self._error is not None:
                    raise self._error
                before = raw.bufferedAmount
                if not await self._wait(self._stall) and raw.bufferedAmount >= before:
                    raise Stalled(f"{self._peer} took no data for {self._stall:g} s; stopped")
                if moved is not None:
                    moved()
            if self._error is not None:
                raise self._error
        finally:
            raw.bufferedAmountLowThreshold = LOW_WATER

    async def _why_closed(self) -> None:
        """The channel closed: wait (at most the grace) for the reason, and raise it."""
        while self._error is None:
            await self._wait(PEER_LEFT_GRACE)
            if self._grace is None:  # closed without a close event: say so now
                self.fail(PeerGone(f"{self._peer} closed the connection"))
        raise self._error

    def close(self) -> None:
        """Forget a pending close notice (the transfer is over)."""
        if self._grace is not None:
            self._grace.cancel()

    @property
    def sent(self) -> int:
        """Data bytes that left this side (queued minus what aiortc still holds)."""
        return max(self.queued - self.raw.bufferedAmount, 0)
