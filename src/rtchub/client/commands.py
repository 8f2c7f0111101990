"""Entry points of ``rtchub send`` and ``rtchub receive`` (flags already parsed)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from rtchub.client import sctp_tuning
from rtchub.client.signaling import ClientError
from rtchub.client.transfer import TransferOptions, receive_file, send_file
from rtchub.config.settings import parse_ip_list

__all__ = ["DEFAULT_SERVER", "run_receive", "run_send"]

DEFAULT_SERVER = "http://localhost:8080"


def _options(server: str | None, yes: bool, node_ip: str | None) -> TransferOptions:
    server = server or os.environ.get("RTCHUB_SERVER") or DEFAULT_SERVER
    text = node_ip if node_ip is not None else os.environ.get("RTC_NODE_IP", "")
    try:
        ips = parse_ip_list(text)
    except ValueError as exc:
        raise ValueError(f"RTC_NODE_IP={text!r}: expected {exc}") from None
    return TransferOptions(server=server, yes=yes, node_ips=ips,
                           tuned=sctp_tuning.enabled())


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        result = asyncio.run(coro)
    except ClientError as exc:
        print(f"rtchub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rtchub: interrupted", file=sys.stderr)
        return 130
    return int(result)


def run_send(path: str, server: str | None, yes: bool, node_ip: str | None,
             chunk_kib: int | None = None) -> int:
    """``rtchub send FILE``."""
    try:
        opts = _options(server, yes, node_ip)
        if chunk_kib is not None:
            if not 1 <= chunk_kib <= 256:
                raise ValueError("--chunk-kib: expected 1 to 256 (KiB)")
            opts = dataclasses.replace(opts, chunk_size=chunk_kib * 1024)
    except ValueError as exc:
        print(f"rtchub: {exc}", file=sys.stderr)
        return 2
    return _run(send_file(Path(path), opts))


def run_receive(code: str, output: str | None, server: str | None, yes: bool,
                node_ip: str | None) -> int:
    """``rtchub receive CODE``."""
    try:
        opts = _options(server, yes, node_ip)
    except ValueError as exc:
        print(f"rtchub: {exc}", file=sys.stderr)
        return 2
    return _run(receive_file(code.strip(), Path(output) if output else None, opts))
