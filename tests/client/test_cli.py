"""``rtchub send`` / ``rtchub receive`` as real subprocesses against a real server.

ICE runs on 127.0.0.1 only (``RTC_NODE_IP``), so the peers talk over loopback;
run under ``unshare -n`` to be sure nothing else is reachable. How transfers end
early (Ctrl-C, a dying peer, deadlines) is in ``test_pairing_cli_endings.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import sys
import tarfile
from pathlib import Path

import pytest

from rtchub import __version__
from rtchub.client.archive import DirectorySource, plan
from rtchub.client.verify import fingerprint_of, verification_string
from tests.support import running

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


async def _finish_bytes(proc: asyncio.subprocess.Process) -> tuple[int, bytes, str]:
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()


async def _stderr_until(proc: asyncio.subprocess.Process, pattern: str, seen: bytearray,
                        timeout: float = TIMEOUT) -> re.Match[str]:
    """Read ``proc``'s stderr into ``seen`` until ``pattern`` matches it (a question has no
    line end, so this reads chunks, not lines)."""
    assert proc.stderr is not None
    async with asyncio.timeout(timeout):
        while not (match := re.search(pattern, seen.decode(errors="replace"))):
            chunk = await proc.stderr.read(4096)
            assert chunk, f"exited before {pattern!r}: {seen.decode(errors='replace')}"
            seen += chunk
    return match


def _verification(text: str) -> str:
    match = re.search(r"Verification: (\d{4}-\d{4}-\d{4})", text)
    assert match, text
    return match.group(1)


@pytest.mark.webrtc
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
        assert _verification("".join(head) + out_s) == _verification(out_r)
        assert f"SHA-256 {digest} verified by the receiver" in out_s
        assert f"SHA-256 {digest} verified" in out_r
        assert "rtchub receive " + code in err_s  # instructions for the other person
        # the sender learns the code's lifetime (the mint answer's expiresAt)
        assert re.search(r"The code works once, until \d\d:\d\d:\d\d \(in 10 min\)", err_s)
        assert "/s" in err_r and "ETA" in err_r  # the progress bar
        # two tuned CLIs on one host agree on wide SCTP packets (rtchub.client.sctp_tuning)
        assert "SCTP packets of up to 16384 bytes" in err_s
        assert "SCTP packets of up to 16384 bytes" in err_r
        assert srv.hub.stats.frames_in["offer"] == 1 and srv.hub.stats.frames_in["answer"] == 1


@pytest.mark.webrtc
async def test_no_to_the_verification_question_refuses_as_unverified(tmp_path: Path) -> None:
    source = tmp_path / "secret.txt"
    source.write_text("not for you")
    async with running() as srv:
        env = _env(srv.url)
        sender = await _spawn("send", str(source), env=env)
        code, head = await _read_code(sender)
        receiver = await _spawn("receive", code, "-o", str(tmp_path / "nope.txt"), env=env,
                                stdin=True)
        seen = bytearray()
        question = await _stderr_until(receiver, r"\[y/N\] ", seen)
        assert receiver.stdout is not None
        said = (await asyncio.wait_for(receiver.stdout.readline(), TIMEOUT)).decode()
        verification = _verification(said)
        # the question names the string and asks to compare it with the sender's
        line = seen.decode()[:question.end()].splitlines()[-1]
        assert f"if the sender shows the verification string {verification} too?" in line
        assert "secret.txt (11 B)" in line
        (rc_r, _, err_r), (rc_s, out_s, err_s) = await asyncio.gather(
            _finish(receiver, b"n\n"), _finish(sender))
        assert _verification("".join(head) + out_s) == verification
        assert rc_r == 1 and "refused as unverified" in err_r
        assert rc_s == 1
        assert "the receiver refused the connection as unverified" in err_s
        assert "nothing was sent" in err_s
        assert not (tmp_path / "nope.txt").exists()
        assert not (tmp_path / "nope.txt.part").exists()


@pytest.mark.webrtc
async def test_receive_with_a_bad_code_fails_clearly() -> None:
    async with running() as srv:
        receiver = await _spawn("receive", "0000", "--yes", env=_env(srv.url))
        rc, _, err = await _finish(receiver)
        assert rc == 1
        assert "code 0000 is used, expired or unknown" in err
        assert "Traceback" not in err


def test_verification_string_depends_on_both_fingerprints() -> None:
    sdp = "v=0\r\na=fingerprint:sha-256 AB:CD\r\n"
    assert fingerprint_of(sdp) == "AB:CD"
    one = verification_string("AB:CD", "EF:01")
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", one)
    assert one != verification_string("AB:CD", "EF:02")
    assert one != verification_string("EF:01", "AB:CD")
    with pytest.raises(ValueError):
        fingerprint_of("v=0\r\n")


@pytest.mark.webrtc
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
        assert "Verification:" in err_r and "to standard output: 200000 bytes" in err_r
        assert "stdin (size unknown)" in err_s
        # the progress of a stream of unknown length: bytes and rate, no invented percentage
        assert re.search(r"send \d.*/s", err_s) and "%" not in err_s


@pytest.mark.webrtc
async def test_a_reader_that_stops_reading_stdout_ends_the_transfer_clearly() -> None:
    async with running() as srv:
        env = _env(srv.url)
        zeros = os.open("/dev/zero", os.O_RDONLY)
        try:
            sender = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "rtchub", "send", "-", env=env, stdin=zeros,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        finally:
            os.close(zeros)
        code, _ = await _read_code(sender)
        read_end, write_end = os.pipe()  # the receiver's stdout: we read a little, then quit
        try:
            receiver = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "rtchub", "receive", code, "--yes", "-o", "-", env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=write_end,
                stderr=asyncio.subprocess.PIPE)
        finally:
            os.close(write_end)
        stdout = asyncio.StreamReader()
        pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stdout), os.fdopen(read_end, "rb"))
        await asyncio.wait_for(stdout.readexactly(1 << 20), TIMEOUT)
        pipe.close()
        (_, err), (rc_s, _, err_s) = await asyncio.wait_for(asyncio.gather(
            receiver.communicate(), _finish(sender)), TIMEOUT)
    err_r = err.decode()
    assert receiver.returncode == 1 and "rtchub: cannot write to standard output" in err_r
    assert rc_s == 1 and "the receiver stopped: cannot write to standard output" in err_s
    assert "Traceback" not in err_r + err_s


@pytest.mark.webrtc
async def test_an_output_path_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("hello")
    async with running() as srv:
        env = _env(srv.url)
        sender = await _spawn("send", str(source), env=env)
        code, _ = await _read_code(sender)
        receiver = await _spawn("receive", code, "--yes", "-o", str(tmp_path / "no" / "f"),
                                env=env)
        (rc_r, _, err_r), (rc_s, _, err_s) = await asyncio.gather(
            _finish(receiver), _finish(sender))
    assert rc_r == 1 and f"{tmp_path / 'no'} is not a directory" in err_r
    assert rc_s == 1 and "the receiver declined: the receiver cannot write there" in err_s


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@pytest.mark.webrtc
async def test_a_directory_arrives_whole_after_a_yes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "trip" / "día 2").mkdir(parents=True)
    (photos / "empty").mkdir()
    (photos / "a.bin").write_bytes(os.urandom(2 * 1024 * 1024 + 5))
    (photos / "trip" / "día 2" / "note.txt").write_text("ok")
    (photos / "trip" / ("long" * 40 + ".txt")).write_text("a name past ustar's 100 bytes")
    (photos / "zero").write_bytes(b"")
    (photos / "link").symlink_to("a.bin")
    outdir = tmp_path / "out"
    outdir.mkdir()
    async with running() as srv:
        env = _env(srv.url)
        sender = await _spawn("send", str(photos), env=env)
        code, _ = await _read_code(sender)
        receiver = await _spawn("receive", code, "-o", str(outdir / "copy"), env=env,
                                stdin=True)
        seen = bytearray()
        await _stderr_until(receiver, r"\[y/N\] ", seen)
        assert "Receive photos (directory, 4 files, 2." in seen.decode()
        (rc_r, out_r, err_r), (rc_s, _, err_s) = await asyncio.gather(
            _finish(receiver, b"y\n"), _finish(sender))
    assert rc_r == 0, err_r
    assert rc_s == 0, err_s
    expected = _tree(photos)
    del expected["link"]
    assert _tree(outdir / "copy") == expected
    assert "Skipping photos/link: not a regular file or directory" in err_s
    assert "Received directory" in out_r and "4 files" in out_r
    assert sorted(p.name for p in outdir.iterdir()) == ["copy"]  # no .part, no hidden dir
    assert "100.0%" in err_s and "100.0%" in err_r  # both bars knew the size


def test_a_directory_stream_is_a_tar_of_the_planned_length(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "x").mkdir(parents=True)
    (root / "x" / "f").write_bytes(os.urandom(1000))
    (root / ("é" * 80)).write_bytes(b"pax")
    archive = plan(root)
    stream = DirectorySource(archive)
    data = b"".join(iter(lambda: stream.read(777), b""))
    assert len(data) == archive.size and archive.files == 2
    out = tmp_path / "t.tar"
    out.write_bytes(data)
    with tarfile.open(out) as tar:
        names = tar.getnames()
        member = tar.extractfile("d/x/f")
        assert member is not None and member.read() == (root / "x" / "f").read_bytes()
    assert names == ["d", "d/x", "d/" + "é" * 80, "d/x/f"]


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await _spawn(*args, env=env if env is not None else dict(os.environ))
    return await _finish(proc)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("server", "says"), [
    ("ftp://hub.example", "expected an http:// or https:// URL"),
    ("ws://127.0.0.1:8080", "give the server's http:// address, such as http://127.0.0.1:8080"),
    ("127.0.0.1:8080", "it has no scheme; write it as a URL, such as http://127.0.0.1:8080"),
    ("http://", "expected http://HOST[:PORT]"),
])
async def test_a_server_url_of_the_wrong_kind_is_one_line_and_status_2(
        tmp_path: Path, server: str, says: str) -> None:
    (tmp_path / "f").write_text("x")
    for args in (("send", str(tmp_path / "f"), "--server", server),
                 ("receive", "1234", "--server", server)):
        rc, _, err = await _cli(*args)
        assert rc == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"--server/RTCHUB_SERVER is {server!r}: {says}" in err
    env = {**os.environ, "RTCHUB_SERVER": server}
    rc, _, err = await _cli("receive", "1234", env=env)
    assert rc == 2 and f"--server/RTCHUB_SERVER is {server!r}" in err


async def test_an_unreachable_server_is_one_line_and_status_2(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    (tmp_path / "f").write_text("x")
    for args in (("send", str(tmp_path / "f")), ("receive", "1234")):
        rc, _, err = await _cli(*args, "--server", url)
        assert rc == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"cannot reach the rtchub server at {url} (--server/RTCHUB_SERVER)" in err
        assert "check the address, and that 'rtchub serve' runs there" in err


async def test_a_server_that_is_not_rtchub_is_named() -> None:
    async with running() as srv:
        rc, _, err = await _cli("receive", "1234", "--server", srv.url + "/elsewhere")
    assert rc == 2 and "Traceback" not in err
    assert f"{srv.url}/elsewhere (--server/RTCHUB_SERVER) is not an rtchub server" in err


async def test_version_and_help_speak_to_users() -> None:
    rc, out, _ = await _cli("--version")
    assert rc == 0 and out.strip() == f"rtchub {__version__}"
    rc, send_help, _ = await _cli("send", "--help")
    send_help = " ".join(send_help.split())
    assert rc == 0
    assert "- for standard input" in send_help
    assert "a directory with everything in it" in send_help
    assert "code lifetime" in send_help and "10 minutes" in send_help
    assert "--yes" not in send_help  # the sender never asks anything
    rc, receive_help, _ = await _cli("receive", "--help")
    receive_help = " ".join(receive_help.split())
    assert rc == 0
    assert "- for standard output" in receive_help
    assert "verification string" in receive_help and "--timeout" in receive_help
    for text in (send_help, receive_help):
        assert not re.search(r"seed|\b00\d\b", text, re.IGNORECASE)
