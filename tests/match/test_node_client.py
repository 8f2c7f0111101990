"""Seed 001's test snippet with the real Node socket.io-client against ``rtchub serve``."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sys
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
TIMEOUT = 20.0

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_DIR / "node_modules" / "socket.io-client").is_dir(),
    reason="needs node and `npm ci` in tests/node (scripts/test does both)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_seed_snippet_with_node_socket_io_client() -> None:
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
            "node", str(NODE_DIR / "match_snippet.js"), f"http://127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE, cwd=NODE_DIR)
        out, _ = await asyncio.wait_for(node.communicate(), TIMEOUT)
        steps = {s["step"]: s for s in map(json.loads, out.decode().splitlines())}
        assert node.returncode == 0, steps
        assert steps["log"]["line"].startswith("Match found: ")
        assert steps["matched"] == {"step": "matched", "roomId": steps["matched"]["roomId"],
                                    "a": "Other User", "b": "Test User", "image": True}
        assert steps["offer"] == {"step": "offer", "from": True, "userName": "Test User"}
        assert steps["chat"]["both"] and steps["chat"]["message"] == "hello from node"
        assert steps["refused"]["code"] == "peer_not_found"
        assert steps["stopped"] == {"step": "stopped", "transport": "websocket",
                                    "upgraded": True}
        assert steps["polling"] == {"step": "polling", "transport": "polling",
                                    "code": "not_in_room"}
    finally:
        if server.returncode is None:
            server.terminate()
        assert await asyncio.wait_for(server.wait(), TIMEOUT) == 0
