"""How a transfer between two ``rtchub`` CLIs ends early: never a hang.

Real subprocesses, real signals, a real server: Ctrl-C (SIGINT) on either side,
a receiver killed (SIGKILL) or frozen (SIGSTOP) mid-transfer, a sender that
never connects, a code nobody uses. Mid-transfer means it: the sender sends its
stdin, which is /dev/zero, so the transfer is still going whenever the signal
lands, and the sender outpaces the receiver, whose queue of received messages
is never empty (where Python 3.11's ``asyncio.wait_for`` used to lose the
cancellation that Ctrl-C is).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.client.test_cli import TIMEOUT, _env, _finish, _read_code, _spawn, _stderr_until
from tests.support import running

pytestmark = pytest.mark.webrtc

#: The first signal must stop a CLI within a second (issue 13): measured from the kill()
#: to its last line, printed once the other side was told, the connection closed and
#: the .part removed. The interpreter's own exit after that is CPU-bound (~0.05 s of CPU),
#: which a machine loaded by others can stretch: it gets EXIT_AFTER.
STOP_WITHIN = 1.0
EXIT_AFTER = 10.0
#: A stream's progress line with at least 4 MiB received ("receive 12.3 MiB 45.6 MiB/s"):
#: data is flowing steadily.
FLOWING = r"receive ([4-9]|\d\d+)\.\d MiB "


@asynccontextmanager
async def _endless_transfer(srv_url: str, tmp_path: Path, *sender_args: str
                            ) -> AsyncIterator[tuple[asyncio.subprocess.Process,
                                                     asyncio.subprocess.Process, Path,
                                                     bytearray]]:
    """A sender streaming an endless stdin and a receiver writing into ``out/``, with
    data flowing; yields both processes, the output directory and the receiver's stderr
    so far."""
    env = _env(srv_url)
    out = tmp_path / "out"
    out.mkdir()
    zeros = os.open("/dev/zero", os.O_RDONLY)
    try:
        sender = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtchub", "send", "-", *sender_args, env=env, stdin=zeros,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    finally:
        os.close(zeros)
    receiver: asyncio.subprocess.Process | None = None
    try:
        code, _ = await _read_code(sender)
        receiver = await _spawn("receive", code, "--yes", "-o", str(out), env=env)
        seen = bytearray()
        await _stderr_until(receiver, FLOWING, seen)
        assert (out / "stdin.part").exists()
        yield sender, receiver, out, seen
    finally:
        for proc in (sender, receiver):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _stopped(proc: asyncio.subprocess.Process, sig: int, seen: bytearray) -> float:
    """Send ``sig`` to ``proc``; seconds until it said its last word (``rtchub: ...``
    after the signal); then it must exit."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    proc.send_signal(sig)
    await _stderr_until(proc, r"\nrtchub: (cancelled|stopped)", seen, TIMEOUT)
    took = loop.time() - start
    await asyncio.wait_for(proc.wait(), EXIT_AFTER)
    return took


async def test_ctrl_c_in_the_receiver_stops_both_sides_and_leaves_no_part(
        tmp_path: Path) -> None:
    async with running() as srv, _endless_transfer(srv.url, tmp_path) as (
            sender, receiver, out, seen):
        took = await _stopped(receiver, signal.SIGINT, seen)
        rc_r, _, rest = await _finish(receiver)
        rc_s, _, err_s = await _finish(sender)
    err_r = seen.decode() + rest
    assert took < STOP_WITHIN, f"the receiver took {took:.2f} s to stop"
    assert rc_r == 130 and "rtchub: cancelled (Ctrl-C)" in err_r
    assert "Traceback" not in err_r
    assert list(out.iterdir()) == []  # no stdin.part, no stdin
    assert rc_s == 1 and "rtchub: the receiver cancelled the transfer" in err_s
    assert "Traceback" not in err_s


async def test_ctrl_c_in_the_sender_stops_both_sides(tmp_path: Path) -> None:
    async with running() as srv, _endless_transfer(srv.url, tmp_path) as (
            sender, receiver, out, _):
        said = bytearray()
        took = await _stopped(sender, signal.SIGINT, said)
        rc_s, _, rest = await _finish(sender)
        rc_r, _, err_r = await _finish(receiver)
    err_s = said.decode() + rest
    assert took < STOP_WITHIN, f"the sender took {took:.2f} s to stop"
    assert rc_s == 130 and "rtchub: cancelled (Ctrl-C)" in err_s
    assert rc_r == 1 and "rtchub: the sender cancelled the transfer" in err_r
    assert list(out.iterdir()) == []
    assert "Traceback" not in err_s + err_r


async def test_sigterm_ends_a_transfer_as_ctrl_c_does(tmp_path: Path) -> None:
    async with running() as srv, _endless_transfer(srv.url, tmp_path) as (
            sender, receiver, out, seen):
        took = await _stopped(receiver, signal.SIGTERM, seen)
        rc_r, _, rest = await _finish(receiver)
        rc_s, _, err_s = await _finish(sender)
    err_r = seen.decode() + rest
    assert took < STOP_WITHIN, f"the receiver took {took:.2f} s to stop"
    assert rc_r == 143 and "rtchub: stopped (SIGTERM)" in err_r
    assert "Traceback" not in err_r + err_s
    assert rc_s == 1 and "the receiver cancelled the transfer" in err_s
    assert list(out.iterdir()) == []


async def test_ctrl_c_at_the_question_stops_at_once(tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("hello")
    async with running() as srv:
        env = _env(srv.url)
        sender = await _spawn("send", str(source), env=env)
        code, _ = await _read_code(sender)
        # stdin stays open and silent: the question waits on it
        receiver = await _spawn("receive", code, "-o", str(tmp_path / "got.txt"), env=env,
                                stdin=True)
        seen = bytearray()
        await _stderr_until(receiver, r"\[y/N\] ", seen)
        took = await _stopped(receiver, signal.SIGINT, seen)
        rc_r, _, rest = await _finish(receiver)
        rc_s, _, err_s = await _finish(sender)
    err_r = seen.decode() + rest
    assert took < STOP_WITHIN, f"the receiver took {took:.2f} s to stop"
    assert rc_r == 130 and "Traceback" not in err_r
    assert rc_s == 1 and "the receiver cancelled the transfer" in err_s
    assert not (tmp_path / "got.txt").exists()


async def test_the_question_ends_when_the_sender_cancels(tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("hello")
    async with running() as srv:
        env = _env(srv.url)
        sender = await _spawn("send", str(source), env=env)
        code, _ = await _read_code(sender)
        receiver = await _spawn("receive", code, "-o", str(tmp_path / "got.txt"), env=env,
                                stdin=True)  # nobody will answer
        seen = bytearray()
        await _stderr_until(receiver, r"\[y/N\] ", seen)
        await _stopped(sender, signal.SIGINT, bytearray())
        rc_r, _, rest = await _finish(receiver)
    assert rc_r == 1
    assert "rtchub: the sender cancelled the transfer" in seen.decode() + rest
    assert not (tmp_path / "got.txt").exists()


async def test_a_sender_killed_mid_transfer_leaves_no_part(tmp_path: Path) -> None:
    async with running() as srv, _endless_transfer(srv.url, tmp_path) as (
            sender, receiver, out, seen):
        sender.kill()
        await sender.wait()
        rc_r, _, rest = await _finish(receiver)
    assert rc_r == 1
    assert "rtchub: the sender disconnected" in seen.decode() + rest
    assert list(out.iterdir()) == []


async def test_a_receiver_killed_mid_transfer_does_not_freeze_the_sender(
        tmp_path: Path) -> None:
    async with running() as srv, _endless_transfer(srv.url, tmp_path) as (
            sender, receiver, _, _):
        receiver.kill()
        await receiver.wait()
        # the relay saw it go (its socket closed with the process): at once, plus a
        # second's grace for what the data channel still carried
        rc_s, _, err_s = await _finish(sender)
    assert rc_s == 1, err_s
    assert "rtchub: the receiver disconnected" in err_s
    assert "Traceback" not in err_s


async def test_a_frozen_receiver_stops_the_sender_at_its_deadline(tmp_path: Path) -> None:
    """SIGSTOP keeps the receiver's sockets open (the relay sees nothing), so only the
    sender's own deadline on the drain of its send buffer can end this."""
    async with running() as srv, _endless_transfer(srv.url, tmp_path, "--timeout", "2") as (
            sender, receiver, _, _):
        receiver.send_signal(signal.SIGSTOP)
        try:
            rc_s, _, err_s = await _finish(sender)
        finally:
            receiver.kill()
    assert rc_s == 1, err_s
    assert "rtchub: the sender stopped" not in err_s
    assert "rtchub: the receiver took no data for 2 s; stopped" in err_s


async def test_a_sender_that_never_connects_is_reported_at_the_deadline() -> None:
    async with running() as srv:
        async with aiohttp.ClientSession() as http, http.post(
                f"{srv.url}/rendezvous/code") as resp:
            code = (await resp.json())["code"]  # minted by nobody who will connect
        receiver = await _spawn("receive", code, "--yes", "--timeout", "2",
                                env=_env(srv.url))
        rc, _, err = await _finish(receiver)
    assert rc == 1
    assert "rtchub: the sender did not connect within 2 s (it may have stopped)" in err


async def test_a_code_nobody_uses_expires_and_the_sender_says_so(tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("hello")
    async with running(room_ttl=2.0) as srv:
        sender = await _spawn("send", str(source), "--timeout", "1", env=_env(srv.url))
        code, _ = await _read_code(sender)
        rc, _, err = await _finish(sender)
    assert rc == 1
    assert re.search(r"The code works once, until (\d\d:\d\d:\d\d) \(in 2 s\)", err), err
    until = re.search(r"until (\d\d:\d\d:\d\d)", err)
    assert until is not None
    assert (f"rtchub: the code {code} expired at {until.group(1)} before anyone used it; "
            "run rtchub send again for a new code") in err
