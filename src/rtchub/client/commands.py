"""Entry points of ``rtchub send`` and ``rtchub receive`` (flags already parsed).

Exit status: 0 done; 1 the transfer failed (declined, mismatch, the other side
gone, a deadline passed, a bad code); 2 a bad setting (the server URL, an
option) or an unreachable server; 130 Ctrl-C; 143 SIGTERM. Every failure is one
line on stderr, never a traceback.

Ctrl-C cancels the command's one task (``asyncio.run`` does that on the first
SIGINT); SIGTERM does the same here. Its cleanup tells the other side, closes
the connection and removes any ``.part`` within :data:`peer.CLOSE_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from rtchub.client import sctp_tuning
from rtchub.client.peer import TransferOptions
from rtchub.client.signaling import ClientError, SetupError, server_url
from rtchub.config.settings import parse_ip_list

__all__ = ["DEFAULT_SERVER", "run_receive", "run_send"]

DEFAULT_SERVER = "http://localhost:8080"
_SIGTERM_STATUS = 128 + signal.SIGTERM


def _options(server: str | None, yes: bool, node_ip: str | None, timeout: float | None
             ) -> TransferOptions:
    url = server_url(server if server is not None
                     else os.environ.get("RTCHUB_SERVER") or DEFAULT_SERVER)
    text = node_ip if node_ip is not None else os.environ.get("RTC_NODE_IP", "")
    try:
        ips = parse_ip_list(text)
    except ValueError as exc:
        raise SetupError(f"--node-ip/RTC_NODE_IP is {text!r}: expected {exc}") from None
    opts = TransferOptions(server=url, yes=yes, node_ips=ips, tuned=sctp_tuning.enabled())
    if timeout is not None:
        if not 0 < timeout <= 3600:
            raise SetupError(f"--timeout is {timeout:g}: expected 1 to 3600 (seconds)")
        opts = dataclasses.replace(opts, timeout=timeout)
    return opts


def _background_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """aiortc and aioice run fire-and-forget tasks (SCTP retransmissions, ICE checks);
    when the other side vanishes, they fail with connection errors that nobody awaits.
    The transfer itself reports that in one line: those are dropped, anything else is
    one line too, never a traceback."""
    exc = context.get("exception")
    if isinstance(exc, OSError):  # ConnectionError included
        return
    what = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message")
    print(f"rtchub: in the background: {what}", file=sys.stderr)


async def _main(coro: Coroutine[Any, Any, int]) -> int:
    """Run ``coro`` as this task; SIGTERM cancels it, as Ctrl-C does."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.set_exception_handler(_background_error)
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await coro
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return _run_loop(coro)
    finally:
        # Everything is closed by now. Tearing down the objects that aiortc, PyAV and
        # cryptography leave behind costs ~0.12 s of CPU at exit (measured), which a
        # loaded machine turns into seconds after Ctrl-C; frozen objects are skipped.
        gc.freeze()


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return int(asyncio.run(_main(coro)))
    except ClientError as exc:
        print(f"rtchub: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("rtchub: cancelled (Ctrl-C)", file=sys.stderr)
        return 130
    except asyncio.CancelledError:
        print("rtchub: stopped (SIGTERM)", file=sys.stderr)
        return _SIGTERM_STATUS


def _fail(exc: ClientError) -> int:
    print(f"rtchub: {exc}", file=sys.stderr)
    return exc.exit_status


def run_send(path: str, server: str | None, node_ip: str | None, timeout: float | None = None,
             chunk_kib: int | None = None) -> int:
    """``rtchub send PATH``."""
    from rtchub.client.sender import send

    try:
        opts = _options(server, False, node_ip, timeout)
        if chunk_kib is not None:
            if not 1 <= chunk_kib <= 256:
                raise SetupError(f"--chunk-kib is {chunk_kib}: expected 1 to 256 (KiB)")
            opts = dataclasses.replace(opts, chunk_size=chunk_kib * 1024)
    except SetupError as exc:
        return _fail(exc)
    return _run(send(path, opts))


def run_receive(code: str, output: str | None, server: str | None, yes: bool,
                node_ip: str | None, timeout: float | None = None) -> int:
    """``rtchub receive CODE``."""
    from rtchub.client.receiver import receive

    try:
        opts = _options(server, yes, node_ip, timeout)
    except SetupError as exc:
        return _fail(exc)
    return _run(receive(code.strip(), output, opts))
