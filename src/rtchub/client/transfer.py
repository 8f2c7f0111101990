"""``rtchub send`` and ``rtchub receive``: a file over an aiortc data channel.

The pair relay carries only the offer and the answer (aiortc puts every ICE
candidate in its SDP, so no trickle is needed). On the data channel:

1. sender -> ``{"kind": "file", "name", "size"}`` (``size`` null for stdin)
2. receiver -> ``{"kind": "accept"}`` or ``{"kind": "reject", "reason"}``
3. sender -> binary chunks of the file, paced by ``bufferedAmount``
4. sender -> ``{"kind": "done", "sha256"}``
5. receiver -> ``{"kind": "result", "ok", "sha256"}``; the sender then closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import aiohttp
import orjson
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from rtchub.client import sctp_tuning
from rtchub.client.progress import Progress, human_bytes
from rtchub.client.signaling import ClientError, PairSocket, Rendezvous
from rtchub.client.verify import fingerprint_of, verification_string
from rtchub.media.aiortc_adapter import configure_ice

__all__ = ["TransferOptions", "receive_file", "send_file"]

CHUNK = 64 * 1024
HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TransferOptions:
    """What both commands share."""

    server: str
    yes: bool = False
    node_ips: tuple[str, ...] = ()
    connect_timeout: float = 30.0
    wait_timeout: float = 600.0
    chunk_size: int = CHUNK
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    ask: Callable[[str], bool] | None = None
    tuned: bool = True


class _Channel:
    """A data channel's messages as an awaitable queue; closing ends the queue."""

    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.low = asyncio.Event()
        channel.bufferedAmountLowThreshold = LOW_WATER
        channel.on("message", self.queue.put_nowait)
        channel.on("close", lambda: self.queue.put_nowait(None))
        channel.on("bufferedamountlow", self.low.set)

    async def control(self, timeout: float) -> dict[str, Any]:
        """The next text message as JSON."""
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            raise ClientError(f"the peer said nothing for {timeout:g} s") from None
        if item is None:
            raise ClientError("the peer closed the connection")
        if isinstance(item, bytes):
            raise ClientError("the peer sent data out of turn")
        value = orjson.loads(item)
        if not isinstance(value, dict):
            raise ClientError("the peer sent a malformed control message")
        return value

    def send_control(self, obj: dict[str, Any]) -> None:
        self.channel.send(orjson.dumps(obj).decode())

    async def send_data(self, data: bytes) -> None:
        """Send a chunk, waiting while more than HIGH_WATER bytes are still queued."""
        self.channel.send(data)
        if self.channel.bufferedAmount > HIGH_WATER:
            self.low.clear()
            await self.low.wait()


def _rtc_configuration(servers: list[dict[str, Any]]) -> RTCConfiguration:
    ice = [RTCIceServer(urls=s["urls"], username=s.get("username"),
                        credential=s.get("credential")) for s in servers if "urls" in s]
    return RTCConfiguration(iceServers=ice)


async def _wait_open(channel: RTCDataChannel, timeout: float) -> None:
    if channel.readyState == "open":
        return
    opened = asyncio.get_running_loop().create_future()
    channel.on("open", lambda: _resolve(opened, None))
    try:
        await asyncio.wait_for(opened, timeout)
    except TimeoutError:
        raise ClientError(f"no peer-to-peer connection within {timeout:g} s (ICE failed; "
                          "set RTC_NODE_IP to an address both sides can reach)") from None


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _say(opts: TransferOptions, text: str) -> None:
    opts.out.write(text + "\n")
    opts.out.flush()


def _verify(opts: TransferOptions, pc: RTCPeerConnection, offerer: bool) -> None:
    local = fingerprint_of(pc.localDescription.sdp)
    remote = fingerprint_of(pc.remoteDescription.sdp)
    offer_fp, answer_fp = (local, remote) if offerer else (remote, local)
    _say(opts, f"Verification: {verification_string(offer_fp, answer_fp)} "
               "(compare with the other side)")


async def send_file(path: Path, opts: TransferOptions) -> int:
    """Mint a code, wait for the receiver, stream ``path`` (``-``: stdin); 0 when the
    receiver confirms."""
    size: int | None
    if str(path) == "-":
        handle: BinaryIO = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
        size, name = None, "stdin"
    else:
        try:
            size = path.stat().st_size
            handle = path.open("rb")
        except OSError as exc:
            raise ClientError(f"cannot read {path}: {exc.strerror}") from None
        name = path.name
    with handle:
        async with aiohttp.ClientSession() as http:
            rendezvous = Rendezvous(http, opts.server)
            config = _rtc_configuration(await rendezvous.ice_servers())
            pairing = await rendezvous.mint()
            sock = await PairSocket.connect(http, opts.server, pairing.app_id, "A")
            _say(opts, f"Code: {pairing.code}")
            opts.err.write(f"Sending {name} ({_size_text(size)}). On the other side run:"
                           f"\n    rtchub receive {pairing.code}\n")
            opts.err.flush()
            pc = RTCPeerConnection(config)
            tuning = sctp_tuning.Tuning()
            try:
                await sock.wait_for("room_full", timeout=opts.wait_timeout)
                channel = _Channel(pc.createDataChannel("rtchub-file", ordered=True))
                configure_ice(pc, opts.node_ips, None)
                await pc.setLocalDescription(await pc.createOffer())
                if opts.tuned:
                    tuning = sctp_tuning.Tuning.apply(pc)
                await sock.send({"type": "offer", "sdp": pc.localDescription.sdp,
                                 **sctp_tuning.advertise(opts.tuned)})
                answer = await sock.wait_for("answer", timeout=opts.connect_timeout)
                _use_packet(opts, tuning, answer, pc.localDescription.sdp, str(answer["sdp"]))
                await pc.setRemoteDescription(RTCSessionDescription(str(answer["sdp"]),
                                                                    "answer"))
                _verify(opts, pc, offerer=True)
                await _wait_open(channel.channel, opts.connect_timeout)
                await sock.send({"type": "telemetry", "event": "ice-connected"})
                return await _stream(handle, name, size, channel, opts)
            finally:
                await pc.close()
                tuning.close()
                await sock.close()


def _use_packet(opts: TransferOptions, tuning: sctp_tuning.Tuning, frame: dict[str, Any],
                local_sdp: str, remote_sdp: str) -> None:
    """Agree on the SCTP packet size with the peer (see :mod:`sctp_tuning`) and say so."""
    packet = sctp_tuning.negotiate(opts.tuned, frame, local_sdp, remote_sdp)
    if opts.tuned:
        tuning.use_packet(packet)
    opts.err.write(f"SCTP packets of up to {packet} bytes\n")


def _size_text(size: int | None) -> str:
    return "size unknown" if size is None else human_bytes(size)


async def _stream(handle: BinaryIO, name: str, size: int | None, channel: _Channel,
                  opts: TransferOptions) -> int:
    channel.send_control({"kind": "file", "name": name, "size": size})
    reply = await channel.control(opts.wait_timeout)
    if reply.get("kind") != "accept":
        raise ClientError(f"the receiver declined: {reply.get('reason', 'no reason given')}")
    digest = hashlib.sha256()
    progress = Progress(size, "send", opts.err)
    pipe = size is None  # a pipe may block: read it off the event loop
    while chunk := (await asyncio.to_thread(handle.read, opts.chunk_size) if pipe
                    else handle.read(opts.chunk_size)):
        digest.update(chunk)
        await channel.send_data(chunk)
        progress.update(len(chunk))
    channel.send_control({"kind": "done", "sha256": digest.hexdigest()})
    result = await channel.control(opts.wait_timeout)
    progress.finish()
    if result.get("kind") != "result" or not result.get("ok"):
        raise ClientError("the receiver's SHA-256 does not match: the file was NOT delivered "
                          "intact")
    _say(opts, f"Sent {name}: {progress.done} bytes, SHA-256 {digest.hexdigest()} verified by the "
               f"receiver ({human_bytes(progress.rate())}/s)")
    return 0


def _target(name: object, output: Path | None) -> Path:
    base = Path(str(name)).name
    if not isinstance(name, str) or base in ("", ".", "..") or base != name.replace("\\", "/"
                                                                                  ).split("/")[-1]:
        raise ClientError(f"the sender offered a bad file name {str(name)[:60]!r}")
    if output is None:
        return Path.cwd() / base
    return output / base if output.is_dir() else output


async def receive_file(code: str, output: Path | None, opts: TransferOptions) -> int:
    """Redeem ``code``, answer the sender, write the file (``-o -``: stdout); 0 when the
    SHA-256 matches."""
    if output is not None and str(output) == "-":
        opts = replace(opts, out=opts.err)  # stdout carries the data
    async with aiohttp.ClientSession() as http:
        rendezvous = Rendezvous(http, opts.server)
        config = _rtc_configuration(await rendezvous.ice_servers())
        pairing = await rendezvous.redeem(code)
        sock = await PairSocket.connect(http, opts.server, pairing.app_id, "B")
        pc = RTCPeerConnection(config)
        tuning = sctp_tuning.Tuning()
        got: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
        pc.on("datachannel", lambda ch: _resolve(got, ch))
        try:
            offer = await sock.wait_for("offer", timeout=opts.connect_timeout)
            await pc.setRemoteDescription(RTCSessionDescription(str(offer["sdp"]), "offer"))
            configure_ice(pc, opts.node_ips, None)
            await pc.setLocalDescription(await pc.createAnswer())
            if opts.tuned:
                tuning = sctp_tuning.Tuning.apply(pc)
            _use_packet(opts, tuning, offer, pc.localDescription.sdp, str(offer["sdp"]))
            await sock.send({"type": "answer", "sdp": pc.localDescription.sdp,
                             **sctp_tuning.advertise(opts.tuned)})
            _verify(opts, pc, offerer=False)
            try:
                raw = await asyncio.wait_for(got, opts.connect_timeout)
            except TimeoutError:
                raise ClientError("no data channel from the sender") from None
            channel = _Channel(raw)
            await _wait_open(raw, opts.connect_timeout)
            await sock.send({"type": "telemetry", "event": "ice-connected"})
            return await _collect(channel, output, opts)
        finally:
            await pc.close()
            tuning.close()
            await sock.close()


async def _collect(channel: _Channel, output: Path | None, opts: TransferOptions) -> int:
    meta = await channel.control(opts.wait_timeout)
    size = meta.get("size")
    if meta.get("kind") != "file" or not (size is None or (isinstance(size, int) and size >= 0)):
        raise ClientError("the sender did not offer a file")
    if output is not None and str(output) == "-":
        return await _collect_stdout(channel, meta.get("name"), size, opts)
    target = _target(meta.get("name"), output)
    if target.exists():
        await _reject(channel, f"{target.name} exists there")
        raise ClientError(f"{target} already exists; choose another path with -o")
    question = f"Receive {target.name} ({_size_text(size)}) into {target.parent}? [y/N] "
    if not opts.yes and not await asyncio.to_thread(opts.ask or _ask_tty, question):
        await _reject(channel, "declined by the receiver")
        raise ClientError("declined")
    channel.send_control({"kind": "accept"})
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    progress = Progress(size, "receive", opts.err)
    ok = False
    try:
        with partial.open("wb") as out:
            done = await _pump(channel, out, digest, progress, opts)
        ok = _check(channel, done, digest, progress, size)
        os.replace(partial, target)
    finally:
        if not ok:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    _say(opts, f"Received {target}: {progress.done} bytes, SHA-256 {digest.hexdigest()} "
               "verified")
    await _linger(channel)
    return 0


async def _collect_stdout(channel: _Channel, name: object, size: int | None,
                          opts: TransferOptions) -> int:
    """Write the stream to stdout (data written there cannot be taken back: on a mismatch
    the exit status says so)."""
    question = f"Receive {str(name)[:60]} ({_size_text(size)}) to stdout? [y/N] "
    if not opts.yes and not await asyncio.to_thread(opts.ask or _ask_tty, question):
        await _reject(channel, "declined by the receiver")
        raise ClientError("declined")
    channel.send_control({"kind": "accept"})
    digest = hashlib.sha256()
    progress = Progress(size, "receive", opts.err)
    with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as out:
        done = await _pump(channel, out, digest, progress, opts)
    _check(channel, done, digest, progress, size)
    _say(opts, f"Received {str(name)[:60]} to stdout: {progress.done} bytes, SHA-256 "
               f"{digest.hexdigest()} verified")
    await _linger(channel)
    return 0


async def _pump(channel: _Channel, out: BinaryIO, digest: Any, progress: Progress,
                opts: TransferOptions) -> object:
    """Write data messages to ``out`` until the sender's ``done``; returns that message."""
    while True:
        try:
            item = await asyncio.wait_for(channel.queue.get(), opts.wait_timeout)
        except TimeoutError:
            raise ClientError(f"the sender sent nothing for {opts.wait_timeout:g} s") from None
        if item is None:
            raise ClientError("the sender closed the connection mid-transfer")
        if isinstance(item, bytes):
            out.write(item)
            digest.update(item)
            progress.update(len(item))
            continue
        progress.finish()
        return orjson.loads(item)


def _check(channel: _Channel, done: object, digest: Any, progress: Progress,
           size: int | None) -> bool:
    """Compare hashes (and size), tell the sender; raises on a mismatch."""
    ok = (isinstance(done, dict) and done.get("kind") == "done"
          and done.get("sha256") == digest.hexdigest()
          and (size is None or progress.done == size))
    channel.send_control({"kind": "result", "ok": ok, "sha256": digest.hexdigest()})
    if not ok:
        said = done.get("sha256") if isinstance(done, dict) else "?"
        raise ClientError(f"SHA-256 mismatch (got {digest.hexdigest()}, sender said {said}); "
                          "the data was discarded")
    return ok


async def _reject(channel: _Channel, reason: str) -> None:
    channel.send_control({"kind": "reject", "reason": reason})
    await _linger(channel)


async def _linger(channel: _Channel) -> None:
    """Let our last message reach the sender: wait (briefly) for it to close."""
    async def closed() -> None:
        while await channel.queue.get() is not None:
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closed(), 5.0)


def _ask_tty(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")
