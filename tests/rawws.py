"""A deliberately minimal WebSocket client on a raw socket, for misbehaving on purpose:
broken upgrades, fragmented messages, and clients that stop reading."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
         ).to_bytes(n, "big")
    return head + mask + body


class RawWs:
    """Handshake by hand, then write frames; reading is optional."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int | str, path: str = "/ws", rcvbuf: int | None = None,
                   headers: str | None = None, kept_alive: bool = False,
                   source: str | None = None) -> tuple[RawWs, bytes]:
        """Upgrade on a new socket (TCP ``port``, or a Unix socket path). With
        ``kept_alive`` the socket first serves a plain HTTP request, so the upgrade is the
        socket's second request and the server's aiohttp stack takes it. ``source`` binds
        the client's side to that loopback address."""
        family = socket.AF_UNIX if isinstance(port, str) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            sock.bind((source, 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        if isinstance(port, str):
            await loop.sock_connect(sock, port)
        else:
            await loop.sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
        if kept_alive:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert await asyncio.wait_for(reader.readexactly(2), 5) == b"ok"
        key = base64.b64encode(os.urandom(16)).decode()
        if headers is None:
            headers = (f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}"
                       "\r\nSec-WebSocket-Version: 13\r\n")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return cls(reader, writer), head

    async def send(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.writer.write(frame(opcode, payload, fin))
        await self.writer.drain()

    def send_nowait(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.writer.write(frame(opcode, payload, fin))

    def write(self, data: bytes) -> None:
        """Raw bytes (several frames in one write, a broken frame...)."""
        self.writer.write(data)

    async def close_code(self) -> int:
        """Read everything until the server closes the socket; the code of its close
        frame (frames are parsed from the whole stream at once: it may be megabytes)."""
        data = await asyncio.wait_for(self.reader.read(), 10)
        pos = 0
        while pos + 2 <= len(data):
            opcode, n = data[pos] & 0x0F, data[pos + 1] & 0x7F
            pos += 2
            if n == 126:
                n, pos = struct.unpack_from("!H", data, pos)[0], pos + 2
            elif n == 127:
                n, pos = struct.unpack_from("!Q", data, pos)[0], pos + 8
            if opcode == 0x8:
                return int.from_bytes(data[pos:pos + 2], "big")
            pos += n
        raise AssertionError(f"no close frame in {len(data)} bytes")

    async def recv(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next unfragmented server frame."""
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 5)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return b0 & 0x0F, await asyncio.wait_for(self.reader.readexactly(n), 5)

    def close(self) -> None:
        self.writer.close()
