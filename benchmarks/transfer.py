"""File transfer rate between two ``rtchub`` CLIs on one machine (run by hand).

Starts ``rtchub serve`` on a free loopback port, writes a random file, runs
``rtchub send`` and ``rtchub receive --yes`` as separate processes with ICE on
127.0.0.1 only, and reports the rate and each process's CPU time:

    .venv/bin/python benchmarks/transfer.py --size-mb 200
    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python benchmarks/transfer.py --size-mb 200 --chunk-kib 64

The rate is the file size over the wall time from the receiver's start to the
receiver's exit (it includes redeeming the code, ICE, DTLS and the SHA-256).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def _cpu(pid: int) -> tuple[int, float]:
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def main() -> int:
    """Run one transfer and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=200.0, help="file size in MB (1e6)")
    parser.add_argument("--chunk-kib", type=int, default=None,
                        help="data channel message size (default: the CLI's)")
    parser.add_argument("--verbose", action="store_true", help="show the CLIs' stderr")
    parser.add_argument("--profile", metavar="DIR", type=Path, default=None,
                        help="run both CLIs under cProfile, writing DIR/send.prof and "
                             "DIR/receive.prof")
    args = parser.parse_args()
    size = int(args.size_mb * 1e6)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, RTC_NODE_IP="127.0.0.1", RTCHUB_SERVER=url, PYTHONUNBUFFERED="1",
               ADDR=f"127.0.0.1:{port}", STREAM_ADDR="", LOG_LEVEL="warning",
               RTC_CONFIG_JSON='{"iceServers": []}')  # loopback only: no public STUN
    cli = [sys.executable, "-m", "rtchub"]

    def client(role: str) -> list[str]:
        if args.profile is None:
            return cli
        args.profile.mkdir(parents=True, exist_ok=True)
        return [sys.executable, "-m", "cProfile", "-o", str(args.profile / f"{role}.prof"),
                "-m", "rtchub"]

    with tempfile.TemporaryDirectory() as tmp:
        source, outdir = Path(tmp) / "payload.bin", Path(tmp) / "out"
        outdir.mkdir()
        digest = _write_random(source, size)
        server = subprocess.Popen([*cli, "serve"], env=env)
        try:
            _wait_healthy(url)
            errors = None if args.verbose else subprocess.DEVNULL
            extra = ["--chunk-kib", str(args.chunk_kib)] if args.chunk_kib else []
            sender = subprocess.Popen([*client("send"), "send", str(source), *extra], env=env,
                                      stdout=subprocess.PIPE, stderr=errors, text=True)
            assert sender.stdout is not None
            code = ""
            for line in sender.stdout:
                match = re.match(r"Code: (\d+)", line)
                if match:
                    code = match.group(1)
                    break
            start = time.monotonic()
            receiver = subprocess.Popen([*client("receive"), "receive", code, "--yes", "-o",
                                         str(outdir)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=errors)
            rc_r, cpu_r = _cpu(receiver.pid)
            wall = time.monotonic() - start
            sender.stdout.read()
            rc_s, cpu_s = _cpu(sender.pid)
        finally:
            server.terminate()
            server.wait()
        got = hashlib.sha256((outdir / "payload.bin").read_bytes()).hexdigest() if (
            outdir / "payload.bin").exists() else "missing"
    ok = rc_r == 0 and rc_s == 0 and got == digest
    print(f"transfer of {size / 1e6:.0f} MB: {'ok' if ok else 'FAILED'} in {wall:.1f} s = "
          f"{size / wall / 1e6:.1f} MB/s; CPU sender {cpu_s:.1f} s "
          f"({size / cpu_s / 1e6:.1f} MB per CPU-second), receiver {cpu_r:.1f} s "
          f"({size / cpu_r / 1e6:.1f} MB per CPU-second); load average "
          f"{os.getloadavg()[0]:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
