"""``rtchub receive CODE``: redeem the code, ask, receive into a file, a directory or stdout.

Nothing lands under its final name before its SHA-256 matches the sender's:
a file is written to ``NAME.part`` and renamed; a directory's tar stream is
written to ``NAME.part`` and unpacked only then (:mod:`rtchub.client.archive`).
Whatever ends the transfer early (Ctrl-C, the sender leaving, a deadline)
removes the ``.part``. Standard output cannot take data back: there a mismatch
shows in the exit status only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import aiohttp
import orjson
from aiortc import RTCConfiguration

from rtchub.client.archive import unpack
from rtchub.client.channel import Channel
from rtchub.client.peer import Link, TransferOptions, rtc_configuration
from rtchub.client.progress import Progress, human_bytes
from rtchub.client.signaling import ClientError, Declined, PeerGone, Relay, Rendezvous
from rtchub.client.source import Offer
from rtchub.client.stdio import PipeWriter, ask, is_pipe_like

__all__ = ["receive"]

#: How long the receiver waits, after its last word, for the sender to hang up.
LINGER = 5.0


async def receive(code: str, output: str | None, opts: TransferOptions) -> int:
    """Receive what the sender behind ``code`` offers (``output``: a path, ``-`` for
    standard output, None for the current directory); 0 when the SHA-256 matches."""
    if output == "-":
        opts = replace(opts, out=opts.err)  # stdout carries the data
    async with aiohttp.ClientSession() as http:
        rendezvous = Rendezvous(http, opts.server)
        config = rtc_configuration(await rendezvous.ice_servers())
        pairing = await rendezvous.redeem(code)
        relay = await Relay.open(http, opts.server, pairing.app_id, "B", "the sender")
        try:
            await relay.expect("room_full", opts.timeout,
                               f"the sender did not connect within {opts.timeout:g} s (it may "
                               "have stopped); ask them to run rtchub send again")
            return await _transfer(relay, config, output, opts)
        finally:
            await relay.close()


async def _transfer(relay: Relay, config: RTCConfiguration, output: str | None,
                    opts: TransferOptions) -> int:
    link = Link(opts, relay, config, "the sender")
    reason: str | None = None
    try:
        channel = await link.answer()
        opts.say(f"Verification: {link.verification} (compare it with the sender's)")
        await relay.send({"type": "telemetry", "event": "ice-connected"})
        return await _collect(channel, link.verification, output, opts)
    except asyncio.CancelledError:
        reason = "the receiver cancelled the transfer"
        raise
    except (PeerGone, Declined):
        raise
    except ClientError as exc:
        reason = f"the receiver stopped: {exc}"
        raise
    finally:
        await link.close(reason)


def _offer(meta: dict[str, Any]) -> Offer:
    size, name, files = meta.get("size"), meta.get("name"), meta.get("files")
    directory = meta.get("type") == "directory"
    if (meta.get("kind") != "file" or not isinstance(name, str)
            or not (size is None or (isinstance(size, int) and size >= 0))
            or (directory and (size is None or not isinstance(files, int)))):
        raise ClientError("the sender did not offer a file")
    base = name.replace("\\", "/").split("/")[-1]
    if base in ("", ".", "..") or base != name:
        raise ClientError(f"the sender offered a bad name {name[:60]!r}")
    return Offer(name, size, "directory" if directory else "file",
                 files if directory else None)


def _target(offer: Offer, output: str | None) -> Path:
    if output is None:
        return Path.cwd() / offer.name
    path = Path(output)
    return path / offer.name if path.is_dir() else path


async def _collect(channel: Channel, verification: str, output: str | None,
                   opts: TransferOptions) -> int:
    offer = _offer(await channel.control(
        opts.timeout, f"the sender offered nothing within {opts.timeout:g} s"))
    target = None if output == "-" else _target(offer, output)
    if target is not None and (target.exists() or target.is_symlink()):
        await _refuse(channel, f"{target.name} exists there", unverified=False)
        raise Declined(f"{target} already exists; choose another path with -o")
    if target is not None and not target.parent.is_dir():
        await _refuse(channel, "the receiver cannot write there", unverified=False)
        raise Declined(f"{target.parent} is not a directory; choose another path with -o")
    where = "to standard output" if target is None else f"into {target.parent}"
    if target is not None and target.name != offer.name:
        where = f"as {target}"
    question = (f"Receive {offer.describe()} {where} if the sender shows the verification "
                f"string {verification} too? [y/N] ")
    if not opts.yes and not await channel.guard((opts.ask or _ask_terminal)(question)):
        await _refuse(channel, "the receiver did not confirm the verification string",
                      unverified=True)
        raise Declined("not received; the sender was told the connection was refused as "
                       "unverified")
    channel.send_control({"kind": "accept"})
    if target is None:
        return await _to_stdout(channel, offer, opts)
    return await _to_path(channel, offer, target, opts)


async def _ask_terminal(question: str) -> bool:
    return await ask(question, sys.stderr)


async def _refuse(channel: Channel, reason: str, unverified: bool) -> None:
    channel.send_control({"kind": "reject", "reason": reason, "unverified": unverified})
    await channel.closed(LINGER)


class _Sink(Protocol):
    async def write(self, data: bytes) -> None: ...


class _FileSink:
    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    async def write(self, data: bytes) -> None:
        self._handle.write(data)  # a regular file: never blocks for long


async def _to_path(channel: Channel, offer: Offer, target: Path, opts: TransferOptions) -> int:
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        return await _write_path(channel, offer, target, partial, digest, opts)
    except OSError as exc:
        raise ClientError(f"cannot write {exc.filename or partial}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


async def _write_path(channel: Channel, offer: Offer, target: Path, partial: Path,
                      digest: Any, opts: TransferOptions) -> int:
    with partial.open("wb") as handle:
        received = await _pump(channel, _FileSink(handle), offer, digest, opts)
    if offer.kind == "directory":
        unpacking = Progress(None, "unpack", opts.err)
        files = await unpack(partial, offer.name, target, unpacking)
        unpacking.finish()
        what = f"directory {target}: {files} files,"
    else:
        os.replace(partial, target)
        what = f"{target}:"
    opts.say(f"Received {what} {received} bytes, SHA-256 {digest.hexdigest()} verified")
    await channel.closed(LINGER)
    return 0


async def _to_stdout(channel: Channel, offer: Offer, opts: TransferOptions) -> int:
    fd = sys.stdout.fileno()
    digest = hashlib.sha256()
    try:
        if is_pipe_like(fd):
            pipe = await PipeWriter.open(fd)
            try:
                received = await _pump(channel, pipe, offer, digest, opts)
            finally:
                await pipe.close()
        else:
            with os.fdopen(os.dup(fd), "wb") as handle:
                received = await _pump(channel, _FileSink(handle), offer, digest, opts)
    except OSError as exc:
        raise ClientError(f"cannot write to standard output: {exc.strerror or exc}") from None
    opts.say(f"Received {offer.name} to standard output: {received} bytes, SHA-256 "
             f"{digest.hexdigest()} verified")
    await channel.closed(LINGER)
    return 0


async def _pump(channel: Channel, sink: _Sink, offer: Offer, digest: Any,
                opts: TransferOptions) -> int:
    """Write data until the sender's ``done``, check it, tell the sender; the byte count."""
    progress = Progress(offer.size, "receive", opts.err)
    late = f"the sender sent nothing for {opts.timeout:g} s; stopped"
    while True:
        item = await channel.receive(opts.timeout, late)
        if isinstance(item, bytes):
            await sink.write(item)
            digest.update(item)
            progress.update(len(item))
            continue
        break
    progress.finish()
    try:
        done = orjson.loads(item)
    except orjson.JSONDecodeError:
        done = None
    ok = (isinstance(done, dict) and done.get("kind") == "done"
          and done.get("sha256") == digest.hexdigest()
          and (offer.size is None or progress.done == offer.size))
    channel.send_control({"kind": "result", "ok": ok, "sha256": digest.hexdigest()})
    if not ok:
        said = done.get("sha256") if isinstance(done, dict) else "?"
        raise ClientError(f"the data arrived damaged: SHA-256 {digest.hexdigest()} of "
                          f"{human_bytes(progress.done)}, the sender said {said}")
    return progress.done
