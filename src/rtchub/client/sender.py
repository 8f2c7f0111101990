"""``rtchub send``: mint a code, wait for the receiver, send a file, a directory or stdin.

On the data channel (JSON text for control, binary for data):

1. sender -> ``{"kind": "file", "name", "size"}`` (``size`` null for a stream of
   unknown length; a directory adds ``"type": "directory", "files": N`` and its
   data is a tar stream of exactly ``size`` bytes)
2. receiver -> ``{"kind": "accept"}``, or ``{"kind": "reject", "reason"}`` (with
   ``"unverified": true`` when the person did not confirm the verification string)
3. sender -> binary chunks, paced by ``bufferedAmount``
4. sender -> ``{"kind": "done", "sha256"}``
5. receiver -> ``{"kind": "result", "ok", "sha256"}``; the sender then closes.

Either side, at any step: ``{"kind": "abort", "reason"}``, sent on the channel
and left in the other side's relay mailbox, so it arrives even while the
channel is full of data.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import aiohttp
from aiortc import RTCConfiguration

from rtchub.client.channel import Channel
from rtchub.client.peer import Link, TransferOptions, rtc_configuration
from rtchub.client.progress import Progress, human_bytes
from rtchub.client.signaling import ClientError, Pairing, PeerGone, Relay, Rendezvous
from rtchub.client.source import Source, open_source

__all__ = ["send"]


def _duration(seconds: float) -> str:
    """``600`` -> ``10 min``, ``45`` -> ``45 s``, ``5400`` -> ``1 h 30 min``."""
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


async def send(path: str, opts: TransferOptions) -> int:
    """Send ``path`` (``-``: standard input; a directory: its contents); 0 once the
    receiver confirmed the SHA-256."""
    source = await open_source(path)
    try:
        for skipped in source.skipped:
            opts.note(f"Skipping {skipped}: not a regular file or directory")
        async with aiohttp.ClientSession() as http:
            rendezvous = Rendezvous(http, opts.server)
            config = rtc_configuration(await rendezvous.ice_servers())
            pairing = await rendezvous.mint()
            relay = await Relay.open(http, opts.server, pairing.app_id, "A", "the receiver")
            try:
                await _wait_for_receiver(source, pairing, relay, opts)
                return await _transfer(source, relay, config, opts)
            finally:
                await relay.close()
    finally:
        source.close()


async def _wait_for_receiver(source: Source, pairing: Pairing, relay: Relay,
                             opts: TransferOptions) -> None:
    code = pairing.code
    lifetime = pairing.lifetime if pairing.lifetime is not None else opts.answer_timeout
    until = time.strftime("%H:%M:%S", time.localtime(time.time() + lifetime))
    opts.say(f"Code: {code}")
    opts.note(f"Sending {source.offer.describe()}. On the other side run:\n"
              f"    rtchub receive {code}\n"
              f"The code works once, until {until} (in {_duration(lifetime)}). "
              "Waiting for the receiver...")
    # someone who redeemed just before the end is still on the way: give them time to connect
    await relay.expect("room_full", lifetime + opts.timeout,
                       f"the code {code} expired at {until} before anyone used it; "
                       "run rtchub send again for a new code")


async def _transfer(source: Source, relay: Relay, config: RTCConfiguration,
                    opts: TransferOptions) -> int:
    link = Link(opts, relay, config, "the receiver")
    reason: str | None = None
    try:
        channel = await link.offer()
        opts.say(f"Verification: {link.verification} (the receiver compares it with theirs)")
        await relay.send({"type": "telemetry", "event": "ice-connected"})
        return await _stream(source, channel, opts)
    except asyncio.CancelledError:
        reason = "the sender cancelled the transfer"
        raise
    except PeerGone:
        raise
    except ClientError as exc:
        reason = f"the sender stopped: {exc}"
        raise
    finally:
        await link.close(reason)


async def _stream(source: Source, channel: Channel, opts: TransferOptions) -> int:
    offer = source.offer
    channel.send_control(offer.message())
    opts.note("Waiting for the receiver to compare the verification string and accept...")
    reply = await channel.control(
        opts.answer_timeout,
        f"the receiver did not answer within {_duration(opts.answer_timeout)}")
    if reply.get("kind") == "reject":
        if reply.get("unverified"):
            raise PeerGone("the receiver refused the connection as unverified (the "
                           "verification strings may differ: someone may be in the middle); "
                           "nothing was sent")
        raise PeerGone(f"the receiver declined: {reply.get('reason') or 'no reason given'}")
    if reply.get("kind") != "accept":
        raise ClientError("the receiver answered something unexpected; stopped")
    digest = hashlib.sha256()
    progress = Progress(offer.size, "send", opts.err)
    total = 0
    stream = offer.size is None  # a pipe may stay silent: do not miss the receiver leaving

    async def read() -> bytes:
        if stream:
            return await channel.guard(source.read(opts.chunk_size))
        return await source.read(opts.chunk_size)

    while chunk := await read():
        digest.update(chunk)
        total += len(chunk)
        await channel.send_data(chunk)
        progress.set(channel.sent)
    if offer.size is not None and total != offer.size:
        raise ClientError(f"{offer.name} changed size while it was being sent "
                          f"({offer.size} bytes, then {total}); stopped")
    channel.send_control({"kind": "done", "sha256": digest.hexdigest()})
    await channel.drain(0, lambda: progress.set(channel.sent))
    progress.set(channel.sent)
    result = await channel.control(
        opts.timeout, f"the receiver did not confirm the data within {opts.timeout:g} s")
    progress.finish()
    if result.get("kind") != "result" or not result.get("ok"):
        raise ClientError("the receiver's SHA-256 does not match: the data was NOT delivered "
                          "intact")
    opts.say(f"Sent {offer.name}: {total} bytes, SHA-256 {digest.hexdigest()} verified by the "
             f"receiver ({human_bytes(progress.rate())}/s)")
    return 0
