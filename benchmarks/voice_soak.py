"""Soak: many WebRTC receivers come and go on one voice stream; nothing may accumulate.

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python benchmarks/voice_soak.py --cycles 1000 --parallel 10

Runs an rtchub server in this process (so its state can be inspected), one
aiortc sender, and ``--cycles`` receivers in waves of ``--parallel``, each
connecting, getting media, and disconnecting. Every wave it prints the
server's open peer connections, tasks, open file descriptors and RSS; at the
end it checks they went back to where they started.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.support import running
from tests.voice.voiceclients import start_receiver, start_sender

from rtchub.features.voice.http import BROADCASTS


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def main(args: argparse.Namespace) -> None:
    async with running(node_ips=("127.0.0.1",)) as srv:
        voice = srv.server.app[BROADCASTS]
        sender = await start_sender(srv.ws_url, 440)
        # read the sender's WebSocket, or its client never answers the server's pings
        reader = asyncio.ensure_future(drain(sender.ws.ws))
        start_fds, start_rss = fds(), rss_mib()
        started = time.monotonic()
        done = 0
        while done < args.cycles:
            wave = min(args.parallel, args.cycles - done)
            receivers = await asyncio.gather(*(start_receiver(srv.ws_url)
                                               for _ in range(wave)))
            await asyncio.gather(*(r.frequency(0.05) for r in receivers))
            await asyncio.gather(*(r.close() for r in receivers))
            done += wave
            if done % (args.parallel * 10) == 0 or done == args.cycles:
                gc.collect()
                print(f"{done:6d} receivers  open peers {voice.peers.open_peers:3d}  "
                      f"tasks {len(srv.hub.tasks):3d}  fds {fds():5d}  "
                      f"objects {len(gc.get_objects()):7d}  "
                      f"rss {rss_mib():7.1f} MiB", flush=True)
        for _ in range(100):  # let the last closes finish
            if voice.peers.open_peers <= 1 and len(srv.hub.connections) <= 1:
                break
            await asyncio.sleep(0.05)
        gc.collect()
        print(f"\n{args.cycles} receiver cycles in {time.monotonic() - started:.1f} s; "
              f"fds {start_fds} -> {fds()}, rss {start_rss:.1f} -> {rss_mib():.1f} MiB, "
              f"open peers {voice.peers.open_peers} (the sender's)")
        reader.cancel()
        await sender.close()


async def drain(ws: Any) -> None:
    async for _ in ws:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
