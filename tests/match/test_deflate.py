"""Socket.IO's WebSocket transport negotiates no permessage-deflate (docs/benchmarks.md).

The stock Node ``socket.io-client`` (its ``ws`` offers deflate on every WebSocket) and a
plain aiohttp client offering it both get an uncompressed WebSocket, for a WebSocket-only
connection and for one upgraded from polling.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support import running

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_client_offering_deflate_gets_a_plain_websocket() -> None:
    async with running() as srv, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{srv.port}/socket.io/?EIO=4&transport=websocket"
        async with http.ws_connect(url,
                                   compress=15) as ws:
            assert "Sec-WebSocket-Extensions" not in ws._response.headers
            assert ws.compress == 0
            opening = await asyncio.wait_for(ws.receive_str(), TIMEOUT)
            assert opening.startswith("0{")          # Engine.IO open packet
            await ws.send_str("40")
            connected = await asyncio.wait_for(ws.receive_str(), TIMEOUT)
            assert connected.startswith("40{")


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_DIR / "node_modules" / "socket.io-client").is_dir(),
    reason="needs node and `npm ci` in tests/node (scripts/test does both)")
async def test_stock_socket_io_client_negotiates_no_deflate() -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}",
        "--stream-addr", "", stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert server.stderr is not None
        while True:     # the server logs "rtchub ready" once it listens
            line = await asyncio.wait_for(server.stderr.readline(), TIMEOUT)
            assert line, "rtchub serve exited before it was ready"
            if b"rtchub ready" in line:
                break
        node = await asyncio.create_subprocess_exec(
            "node", str(NODE_DIR / "deflate_check.js"), f"http://127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE, cwd=NODE_DIR)
        out, _ = await asyncio.wait_for(node.communicate(), TIMEOUT)
        result = json.loads(out.decode().splitlines()[-1])
        assert node.returncode == 0, result
        for way in ("websocket", "upgraded"):
            assert result[way] == {"transport": "websocket", "extensions": "",
                                   "code": "not_in_room"}, result
    finally:
        if server.returncode is None:
            server.terminate()
        assert await asyncio.wait_for(server.wait(), TIMEOUT) == 0
