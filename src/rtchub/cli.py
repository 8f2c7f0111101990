"""The ``rtchub`` command: flags -> Config -> run. No logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rtchub import __version__
from rtchub.config import ConfigError, load
from rtchub.config.settings import SETTINGS

__all__ = ["main"]

_GROUPS = {"server": "server", "security": "origins, proxies and rate limits",
           "webrtc": "WebRTC", "limits": "limits", "observability": "observability",
           "cluster": "cluster", "match": "matchmaking (Socket.IO)",
           "calls": "call rooms (seed 003)"}


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


_TRANSFER_HELP = {
    "send": """\
Send PATH straight to one other person: a file, a directory with everything
in it, or - for standard input. Prints a short code to give them; they run
'rtchub receive CODE'. The code works once, until the time printed (the
server's code lifetime, 10 minutes unless its ROOM_TTL says otherwise).
Both sides then show a verification string, and the receiver is asked to
compare it with yours before anything is sent.""",
    "receive": """\
Receive what the person who ran 'rtchub send' offers. Before anything is
received you are asked whether the sender shows the same verification
string; answer n if not (the sender is told the connection was refused as
unverified). A file arrives as NAME.part and takes its name only once its
SHA-256 matches; a directory is unpacked only then.""",
}


def _transfer_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", metavar="URL", default=None,
                        help="the rtchub server both sides use, such as http://hub.example:8080 "
                        "[env RTCHUB_SERVER, default http://localhost:8080]")
    common.add_argument("--node-ip", metavar="IPS", default=None,
                        help="the local addresses to connect from, comma separated "
                        "(127.0.0.1 when both sides are on this machine) [env RTC_NODE_IP; "
                        "default: every address but loopback]")
    common.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                        help="how long the other side may stay silent before giving up "
                        "(default 30)")
    raw = argparse.RawDescriptionHelpFormatter
    send = sub.add_parser(
        "send", parents=[common], help="send a file or a directory; prints a code",
        formatter_class=raw, description=_TRANSFER_HELP["send"],
        epilog="examples:\n  rtchub send holiday.mp4\n  rtchub send photos/\n"
        "  tar c photos | rtchub send -")
    send.add_argument("path", metavar="PATH", help="a file, a directory, or - for standard input")
    send.add_argument("--chunk-kib", type=int, default=None, metavar="N",
                      help="data channel message size in KiB, 1-256 (default 64; for "
                      "measurements)")
    receive = sub.add_parser(
        "receive", parents=[common], help="receive what the sender offers, by its code",
        formatter_class=raw, description=_TRANSFER_HELP["receive"],
        epilog="examples:\n  rtchub receive 4821\n  rtchub receive 4821 -o ~/Downloads\n"
        "  rtchub receive 4821 --yes -o - | tar x")
    receive.add_argument("code", metavar="CODE", help="the code the sender's side printed")
    receive.add_argument("-o", "--output", metavar="PATH", default=None,
                         help="where to put it: a directory to put it in, a new name, or - "
                         "for standard output (default: the current directory)")
    receive.add_argument("--yes", action="store_true",
                         help="do not ask (the verification string is still printed)")


def _token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser(
        "token", help="print a join token for a call room",
        description="Print a join token (JWT, HS256) that lets IDENTITY join ROOM on a server "
        "configured with the same CALL_TOKEN_SECRET. Give it to the client as the join's "
        "access_token (or ?token= on /webrtc/signal/ROOM).",
        epilog="example:\n  CALL_TOKEN_SECRET=$(cat secret) rtchub token --room standup "
        "--identity alice --grant publish,subscribe,record --ttl 2h",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    token.add_argument("--room", required=True, help="the call room it is valid for")
    token.add_argument("--identity", required=True, help="the participant id it names")
    token.add_argument("--name", default=None, help="display name shown to the others")
    token.add_argument("--grant", default="publish,subscribe", metavar="GRANTS",
                       help="comma-separated: publish, subscribe, record, admin "
                       "(default publish,subscribe; '' for none)")
    token.add_argument("--ttl", default="6h",
                       help="how long it is valid: 30m, 6h, 1h30m (default 6h)")
    token.add_argument("--secret", default=None,
                       help="the server's secret [env CALL_TOKEN_SECRET]")


def _print_token(args: argparse.Namespace) -> int:
    from rtchub.config.settings import parse_duration
    from rtchub.features.calls.auth import mint_join_token, parse_grants

    secret = args.secret if args.secret is not None else os.environ.get("CALL_TOKEN_SECRET")
    try:
        if not secret:
            raise ValueError("no secret: pass --secret or set CALL_TOKEN_SECRET (the "
                             "server's)")
        try:
            ttl = parse_duration(args.ttl)
        except ValueError as exc:
            raise ValueError(f"--ttl={args.ttl!r}: expected {exc}") from None
        try:
            grants = parse_grants(args.grant)
        except ValueError as exc:
            raise ValueError(f"--grant={args.grant!r}: {exc}") from None
        try:
            token = mint_join_token(secret, identity=args.identity, room=args.room,
                                    display_name=args.name, ttl=ttl,
                                    publish=grants["publish"],
                                    subscribe=grants["subscribe"],
                                    record=grants["record"], admin=grants["admin"])
        except ValueError as exc:
            message = str(exc)
            raise ValueError(message if message.startswith("a join") else
                             f"expected {message}") from None
    except ValueError as exc:
        print(f"rtchub token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="rtchub", description="Self-hosted WebRTC server.")
    parser.add_argument("--version", action="version", version=f"rtchub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _transfer_parsers(sub)
    _token_parser(sub)
    cfg = sub.add_parser("config", help="print the settings table")
    cfg.add_argument("--markdown", action="store_true", help="as a Markdown table")
    args = parser.parse_args(argv)
    if args.command in ("send", "receive"):
        from rtchub.client import commands

        if args.command == "send":
            return commands.run_send(args.path, args.server, args.node_ip, args.timeout,
                                     args.chunk_kib)
        return commands.run_receive(args.code, args.output, args.server, args.yes,
                                    args.node_ip, args.timeout)
    if args.command == "token":
        return _print_token(args)
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
