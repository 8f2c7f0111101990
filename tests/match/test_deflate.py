"""Socket.IO's WebSocket transport negotiates no permessage-deflate (docs/benchmarks.md).

The stock Node ``socket.io-client`` (its ``ws`` offers deflate on every WebSocket) and a
plain aiohttp client offering it both get an uncompressed WebSocket, for a WebSocket-only
connection and for one upgraded from polling.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiohttp
import pytest

from tests.support import running

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
TIMEOUT = 20.0


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
    async with running() as srv:
        node = await asyncio.create_subprocess_exec(
            "node", str(NODE_DIR / "deflate_check.js"), f"http://127.0.0.1:{srv.port}",
            stdout=asyncio.subprocess.PIPE, cwd=NODE_DIR)
        out, _ = await asyncio.wait_for(node.communicate(), TIMEOUT)
    result = json.loads(out.decode().splitlines()[-1])
    assert node.returncode == 0, result
    for way in ("websocket", "upgraded"):
        assert result[way] == {"transport": "websocket", "extensions": "",
                               "code": "not_in_room"}, result
