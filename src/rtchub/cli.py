"""The ``rtchub`` command: flags -> Config -> run. No logic of its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rtchub.config import ConfigError, load
from rtchub.config.settings import SETTINGS

__all__ = ["main"]

_GROUPS = {"server": "server", "security": "origins, proxies and rate limits",
           "webrtc": "WebRTC", "limits": "limits", "observability": "observability",
           "cluster": "cluster", "match": "matchmaking (Socket.IO)"}


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve", help="run the server",
        description="Run rtchub. Every flag has an environment variable; a flag beats its "
        "variable. ADDR wins over HOST/PORT; WS_ALLOWED_ORIGINS wins over DEV and "
        "CORS_ORIGINS.")
    groups = {key: serve.add_argument_group(title) for key, title in _GROUPS.items()}
    for s in SETTINGS:
        default = f" [env {s.name}" + (f", default {s.default!r}]" if s.default is not None
                                       else "]")
        groups[s.group].add_argument(s.flag, dest=s.dest, metavar=s.name, default=None,
                                     help=s.help + default)


def _config_markdown() -> str:
    lines = ["| variable | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = "(unset)" if s.default is None else f"`{s.default}`" if s.default else "(empty)"
        lines.append(f"| `{s.name}` | `{s.flag}` | {default} | {s.help} |")
    return "\n".join(lines)


def _transfer_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", metavar="URL", default=None,
                        help="rtchub server [env RTCHUB_SERVER, default http://localhost:8080]")
    common.add_argument("--node-ip", metavar="IPS", default=None,
                        help="comma list of local IPs for ICE (loopback allowed) "
                        "[env RTC_NODE_IP; default: every non-loopback address]")
    common.add_argument("--yes", action="store_true",
                        help="accept without asking (for scripts)")
    send = sub.add_parser("send", parents=[common], help="send a file peer to peer",
                          description="Mint a pairing code, print it, and send FILE to "
                          "whoever runs 'rtchub receive CODE'.")
    send.add_argument("file", metavar="FILE")
    send.add_argument("--chunk-kib", type=int, default=None, metavar="N",
                      help="data channel message size in KiB, 1-256 (default 64)")
    receive = sub.add_parser("receive", parents=[common], help="receive a file by code",
                             description="Redeem CODE and receive the sender's file.")
    receive.add_argument("code", metavar="CODE")
    receive.add_argument("-o", "--output", metavar="PATH", default=None,
                         help="file or directory to write to (default: the current directory)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="rtchub", description="Self-hosted WebRTC server.")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _transfer_parsers(sub)
    cfg = sub.add_parser("config", help="print the settings table")
    cfg.add_argument("--markdown", action="store_true", help="as a Markdown table")
    args = parser.parse_args(argv)
    if args.command in ("send", "receive"):
        from rtchub.client import commands

        if args.command == "send":
            return commands.run_send(args.file, args.server, args.yes, args.node_ip,
                                     args.chunk_kib)
        return commands.run_receive(args.code, args.output, args.server, args.yes,
                                    args.node_ip)
    if args.command == "config":
        print(_config_markdown())
        return 0
    flags = {s.dest: getattr(args, s.dest) for s in SETTINGS}
    try:
        config = load(flags=flags)
    except ConfigError as exc:
        print(f"rtchub: configuration error: {exc}", file=sys.stderr)
        return 2
    from rtchub.app import run

    try:
        run(config)
    except ConfigError as exc:  # what only start-up finds out: a taken port, a bad key...
        print(f"rtchub: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
