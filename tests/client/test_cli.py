"""``rtchub send`` / ``rtchub receive`` as real subprocesses against a real server.

ICE runs on 127.0.0.1 only (``RTC_NODE_IP``), so the peers talk over loopback;
run under ``unshare -n`` to be sure nothing else is reachable.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from pathlib import Path

import pytest

from rtchub.client.verify import fingerprint_of, verification_string
from tests.support import running

pytestmark = pytest.mark.webrtc

TIMEOUT = 60.0


def _env(server: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(RTC_NODE_IP="127.0.0.1", RTCHUB_SERVER=server, PYTHONUNBUFFERED="1")
    return env


async def _spawn(*args: str, env: dict[str, str], stdin: bool = False
                 ) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtchub", *args, env=env,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _read_code(proc: asyncio.subprocess.Process) -> tuple[str, list[str]]:
    assert proc.stdout is not None
    lines: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        assert line, f"sender exited early: {lines}"
        lines.append(line)
        match = re.match(r"Code: ([0-9]+)$", line.strip())
        if match:
            return match.group(1), lines


async def _finish(proc: asyncio.subprocess.Process, stdin: bytes | None = None
                  ) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_send_and_receive_a_random_file(tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 123)
    source = tmp_path / "random.bin"
    source.write_bytes(payload)
    outdir = tmp_path / "out"
    outdir.mkdir()
    async with running() as srv:
        env = _env(srv.url)
        sender = await _spawn("send", str(source), env=env)
        code, head = await _read_code(sender)
        receiver = await _spawn("receive", code, "--yes", "-o", str(outdir), env=env)
        (rc_r, out_r, err_r), (rc_s, out_s, err_s) = await asyncio.gather(
            _finish(receiver), _finish(sender))
        assert rc_r == 0, err_r
        assert rc_s == 0, err_s
        received = (outdir / "random.bin").read_bytes()
        digest = hashlib.sha256(payload).hexdigest()
        assert hashlib.sha256(received).hexdigest() == digest
        assert not list(outdir.glob("*.part"))
        verify_s = re.search(r"Verification: (\d{4}-\d{4}-\d{4})", "".join(head) + out_s)
        verify_r = re.search(r"Verification: (\d{4}-\d{4}-\d{4})", out_r)
        assert verify_s and verify_r and verify_s.group(1) == verify_r.group(1)
        assert f"SHA-256 {digest} verified by the receiver" in out_s
        assert f"SHA-256 {digest} verified" in out_r
        assert "rtchub receive " + code in err_s  # instructions for the other person
        assert "/s" in err_r and "ETA" in err_r  # the progress bar
        # two tuned CLIs on one host agree on wide SCTP packets (rtchub.client.sctp_tuning)
        assert "SCTP packets of up to 16384 bytes" in err_s
        assert "SCTP packets of up to 16384 bytes" in err_r
        assert srv.hub.stats.frames_in["offer"] == 1 and srv.hub.stats.frames_in["answer"] == 1


async def test_receiver_can_decline(tmp_path: Path) -> None:
    source = tmp_path / "secret.txt"
    source.write_text("not for you")
    async with running() as srv:
        env = _env(srv.url)
        sender = await _spawn("send", str(source), env=env)
        code, _ = await _read_code(sender)
        receiver = await _spawn("receive", code, "-o", str(tmp_path / "nope.txt"), env=env,
                                stdin=True)
        (rc_r, _, err_r), (rc_s, _, err_s) = await asyncio.gather(
            _finish(receiver, b"n\n"), _finish(sender))
        assert rc_r == 1 and "declined" in err_r
        assert rc_s == 1 and "the receiver declined" in err_s
        assert not (tmp_path / "nope.txt").exists()


async def test_receive_with_a_bad_code_fails_clearly() -> None:
    async with running() as srv:
        receiver = await _spawn("receive", "0000", "--yes", env=_env(srv.url))
        rc, _, err = await _finish(receiver)
        assert rc == 1
        assert "code 0000 is used, expired or unknown" in err


def test_verification_string_depends_on_both_fingerprints() -> None:
    sdp = "v=0\r\na=fingerprint:sha-256 AB:CD\r\n"
    assert fingerprint_of(sdp) == "AB:CD"
    one = verification_string("AB:CD", "EF:01")
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", one)
    assert one != verification_string("AB:CD", "EF:02")
    assert one != verification_string("EF:01", "AB:CD")
    with pytest.raises(ValueError):
        fingerprint_of("v=0\r\n")


async def test_stdin_to_stdout(tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    async with running() as srv:
        env = _env(srv.url)
        sender = await _spawn("send", "-", env=env, stdin=True)
        assert sender.stdin is not None
        sender.stdin.write(payload)
        sender.stdin.close()
        code, _ = await _read_code(sender)
        receiver = await _spawn("receive", code, "--yes", "-o", "-", env=env)
        assert receiver.stdout is not None
        (rc_r, out_r, err_r), (rc_s, _, err_s) = await asyncio.gather(
            _finish_bytes(receiver), _finish(sender))
        assert rc_r == 0, err_r
        assert rc_s == 0, err_s
        assert out_r == payload  # stdout carries only the data
        assert "Verification:" in err_r and "to stdout: 200000 bytes" in err_r


async def _finish_bytes(proc: asyncio.subprocess.Process) -> tuple[int, bytes, str]:
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()
