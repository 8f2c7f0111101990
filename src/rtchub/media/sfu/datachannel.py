"""A data channel on a participant's peer connection, in seed 003's shape.

Seed 003's ``DataChannel`` has ``Label()``, ``Send([]byte)``, ``SendText(string)``,
``OnMessage`` and ``OnClose``; this wraps aiortc's ``RTCDataChannel`` with the same
surface in Python naming, so the call feature can relay chat between
participants through the server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCDataChannel

from rtchub.errors import ConnectionFailed

__all__ = ["DataChannel", "MessageHandler"]

log = logging.getLogger("rtchub.media")

MessageHandler = Callable[[bytes | str], None]


class DataChannel:
    """One SCTP data channel: send bytes or text, get messages, learn when it closes.

    Handlers may be set at any time; a message that arrives before
    ``on_message`` is set is dropped (as in a browser without a listener).
    """

    def __init__(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        self.on_message: MessageHandler | None = None
        self.on_open: Callable[[], None] | None = None
        self.on_close: Callable[[], None] | None = None
        channel.on("message", self._message)
        channel.on("open", self._opened)
        channel.on("close", self._closed)

    @property
    def label(self) -> str:
        """The label both ends gave the channel."""
        return str(self._channel.label)

    @property
    def id(self) -> int | None:
        """The SCTP stream id, once negotiated."""
        ident = self._channel.id
        return None if ident is None else int(ident)

    @property
    def ready_state(self) -> str:
        """``connecting``, ``open``, ``closing`` or ``closed``."""
        return str(self._channel.readyState)

    @property
    def buffered_amount(self) -> int:
        """Bytes queued and not yet sent."""
        return int(self._channel.bufferedAmount)

    def send(self, data: bytes) -> None:
        """Send a binary message; raise :class:`ConnectionFailed` if the channel is closed."""
        self._send(bytes(data))

    def send_text(self, text: str) -> None:
        """Send a text message; raise :class:`ConnectionFailed` if the channel is closed."""
        self._send(str(text))

    def _send(self, data: bytes | str) -> None:
        if self._channel.readyState in ("closing", "closed"):
            raise ConnectionFailed(f"data channel {self.label!r} is {self._channel.readyState}")
        try:
            self._channel.send(data)
        except Exception as exc:  # aiortc raises InvalidStateError before it opens
            raise ConnectionFailed(f"data channel {self.label!r} cannot send: {exc}") from None

    def close(self) -> None:
        """Close the channel (the other end sees it close)."""
        self._channel.close()

    def _message(self, message: bytes | str) -> None:
        handler = self.on_message
        if handler is None:
            return
        try:
            handler(message)
        except Exception:
            log.exception("data channel message handler failed")

    def _opened(self) -> None:
        if self.on_open is not None:
            self.on_open()

    def _closed(self) -> None:
        if self.on_close is not None:
            self.on_close()
