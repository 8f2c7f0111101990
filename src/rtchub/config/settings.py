"""The table of every setting: environment variable, flag, parser, default, help.

One table drives ``rtchub serve --help``, the environment loader, validation
messages and ``docs/configuration.md`` (``rtchub config --markdown``). Parsers
raise :class:`ValueError` with what was expected; the loader turns that into a
:class:`~rtchub.config.ConfigError` naming the variable and the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtchub.config.calls import (
    parse_audio_codecs,
    parse_bitrate,
    parse_percent,
    parse_video_codecs,
)

__all__ = ["SETTINGS", "Setting", "parse_bool", "parse_duration", "parse_ip_list", "parse_rate",
           "parse_size"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Parse ``20s``, ``1.5s``, ``500ms``, ``10m``, ``1h30m`` or plain seconds into seconds."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pos = 0
        value = 0.0
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            value += float(match.group(1)) * scale[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError("a duration such as 20s, 500ms, 10m or a number of seconds") from None
    if value < 0:
        raise ValueError("a duration that is not negative")
    return value


def parse_bool(text: str) -> bool:
    """Parse the usual spellings of a boolean."""
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true or false")


def parse_size(text: str) -> int:
    """Parse a byte count: ``1048576``, ``64KiB``, ``1MiB``, ``1MB``."""
    match = re.fullmatch(r"\s*(\d+)\s*(|b|k|kb|kib|m|mb|mib)\s*", text.lower())
    if not match:
        raise ValueError("a byte count such as 1048576, 64KiB or 1MiB")
    unit = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1 << 20, "mb": 10**6,
            "mib": 1 << 20}[match.group(2)]
    return int(match.group(1)) * unit


def parse_rate(text: str) -> tuple[int, float]:
    """Parse ``N/window`` (``1/5s``, ``10/1m``) into (count, seconds); ``0`` disables."""
    count_text, sep, window_text = text.strip().partition("/")
    expected = "a rate such as 1/5s or 10/1m (0 disables)"
    try:
        count = int(count_text)
    except ValueError:
        raise ValueError(expected) from None
    if count < 0:
        raise ValueError(expected)
    if not sep:
        if count != 0:
            raise ValueError(expected)
        return (0, 60.0)
    try:
        window = parse_duration(window_text)
    except ValueError:
        raise ValueError(expected) from None
    if window <= 0:
        raise ValueError(expected)
    return (count, window)


def _int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError("an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ValueError(f"an integer {bound}")
        return value

    return parse


def _positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError("a duration greater than zero, such as 2s")
    return value


def _consent_timeout(text: str) -> float:
    value = parse_duration(text)
    if not 1 <= value <= 600:
        raise ValueError("a duration between 1s and 10m, such as 30s")
    return value


def _bounded_size(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_size(text)
        if value < low:
            raise ValueError(f"a byte count of at least {low}")
        return value

    return parse


def parse_ip_list(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of IP addresses (``RTC_NODE_IP``); may be empty."""
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    for item in items:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            raise ValueError("a comma-separated list of IP addresses, e.g. 127.0.0.1,::1") from None
    return items


def _port_range(text: str) -> tuple[int, int] | None:
    if not text.strip():
        return None
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not match:
        raise ValueError("a port range such as 40000-40999")
    low, high = int(match.group(1)), int(match.group(2))
    if not (1 <= low <= high <= 65535):
        raise ValueError("a port range within 1-65535 with low <= high")
    return (low, high)


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level == "WARN":
        level = "WARNING"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("one of debug, info, warning, error, critical")
    return level


def _log_format(text: str) -> str:
    fmt = text.strip().lower()
    if fmt not in ("text", "json"):
        raise ValueError("text or json")
    return fmt


def _node_url(text: str) -> str:
    """``NODE_URL``: empty, or an absolute http(s) URL with a host and no query."""
    text = text.strip().rstrip("/")
    if not text:
        return ""
    match = re.fullmatch(r"(https?)://([^/?#\s]+)(/[^?#\s]*)?", text)
    if not match:
        raise ValueError("an absolute http:// or https:// URL such as "
                         "https://node-b.example.com, with no query or fragment")
    return text


def _text(text: str) -> str:
    return text.strip()


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration input: where it comes from and how it is checked."""

    name: str          # environment variable
    flag: str          # CLI flag, e.g. --addr
    parse: Callable[[str], Any]
    default: str | None
    help: str
    group: str = "server"

    @property
    def dest(self) -> str:
        """The attribute name argparse stores the flag under."""
        return self.flag.lstrip("-").replace("-", "_")


SETTINGS: tuple[Setting, ...] = (
    # listening
    Setting("ADDR", "--addr", _text, None,
            "Listen address: ':8080', '0.0.0.0:8080', '[::]:8080' or 'unix:/path'. "
            "Wins over HOST/PORT. Default :8080."),
    Setting("HOST", "--host", _text, None,
            "Bind host (seed 004 alias, read only when ADDR is unset). Default 0.0.0.0."),
    Setting("PORT", "--port", _int(0, 65535), None,
            "Bind port (seed 004 alias, read only when ADDR is unset). Default 8080."),
    Setting("STREAM_ADDR", "--stream-addr", _text, None,
            "Second listener serving only /stream/* (seed 002's port 8081). Default: port "
            "8081 on ADDR's host (none when ADDR is a Unix socket); empty disables. If it "
            "cannot bind, rtchub says so in one line and serves MP3 on ADDR only."),
    Setting("TLS_CERT_FILE", "--tls-cert-file", _text, "",
            "PEM certificate; requires TLS_KEY_FILE. Enables HTTPS/WSS on every listener."),
    Setting("TLS_KEY_FILE", "--tls-key-file", _text, "",
            "PEM private key; requires TLS_CERT_FILE."),
    Setting("HTTP_HEAD_TIMEOUT", "--http-head-timeout", _positive_duration, "10s",
            "How long a request head may take to arrive, on a connection's first request "
            "and on every later one (kept-alive connections idle longer are closed)."),
    Setting("SHUTDOWN_TIMEOUT", "--shutdown-timeout", parse_duration, "10s",
            "Bound on graceful shutdown: after it, remaining connections are cut."),
    # origins
    Setting("WS_ALLOWED_ORIGINS", "--ws-allowed-origins", _text, None,
            "Comma-separated allowed Origins ('*' for all); hosts or full origins. "
            "Wins over CORS_ORIGINS/DEV. Default '*'.", "security"),
    Setting("CORS_ORIGINS", "--cors-origins", _text, None,
            "Seed 004 alias for the origin allow list; read when WS_ALLOWED_ORIGINS is unset "
            "and DEV is not true.", "security"),
    Setting("DEV", "--dev", parse_bool, None,
            "Seed 004: true allows every origin (read when WS_ALLOWED_ORIGINS is unset).",
            "security"),
    Setting("TRUST_PROXY", "--trust-proxy", _text, "",
            "Comma-separated proxy IPs whose X-Forwarded-For is believed for the client IP "
            "(rate limits, logs). Empty: never believed.", "security"),
    Setting("HTTP_RATE_PER_MIN", "--http-rate-per-min", _int(0), "0",
            "Per-IP HTTP requests per minute (fixed window, 429 + Retry-After; Socket.IO "
            "handshakes count, its later polls do not); 0 disables.",
            "security"),
    Setting("WS_RATE_PER_MIN", "--ws-rate-per-min", _int(0), "0",
            "Per-IP WebSocket upgrades and Socket.IO handshakes per minute (fixed window, "
            "429); 0 disables.", "security"),
    Setting("MAX_CONNS_PER_IP", "--max-conns-per-ip", _int(0), "1000",
            "Long-lived connections one client IP may hold at once (WebSockets on every path, "
            "Socket.IO sessions on either transport); more get 429. An IPv6 /64 counts as "
            "one IP; behind TRUST_PROXY, the forwarded address counts. 0 disables.",
            "security"),
    # WebRTC
    Setting("RTC_CONFIG_JSON", "--rtc-config-json", _text,
            '{"iceServers": [{"urls": "stun:stun.l.google.com:19302"}]}',
            "RTCConfiguration served to browsers and the transfer CLI (iceServers, "
            "iceTransportPolicy, bundlePolicy). Default: seed 000's public STUN server, so "
            "calls work across NATs; '{\"iceServers\": []}' turns it off (host candidates "
            "only: a LAN or one machine).", "webrtc"),
    Setting("TURN_URLS", "--turn-urls", _text, "",
            "Comma-separated turn:/turns: URLs of a TURN server that shares TURN_SECRET "
            "(coturn: use-auth-secret). /api/rtc-config then adds them with fresh "
            "time-limited credentials to RTC_CONFIG_JSON's iceServers. Empty: no TURN.",
            "webrtc"),
    Setting("TURN_SECRET", "--turn-secret", _text, "",
            "The TURN server's shared secret (coturn: static-auth-secret); required with "
            "TURN_URLS. Never logged, never sent to clients.", "webrtc"),
    Setting("TURN_TTL", "--turn-ttl", _positive_duration, "24h",
            "How long served TURN credentials work (the username is '<expiry>:<user>'). "
            "Longer than the longest call: coturn checks the expiry on every refresh.",
            "webrtc"),
    Setting("TURN_USER", "--turn-user", _text, "rtchub",
            "The user part of served TURN usernames (coturn logs it).", "webrtc"),
    Setting("RTC_NODE_IP", "--rtc-node-ip", parse_ip_list, "",
            "Comma-separated IPs the server's own WebRTC peers gather and advertise "
            "(like LiveKit node_ip); empty lets aioice pick non-loopback addresses.", "webrtc"),
    Setting("RTC_UDP_PORTS", "--rtc-udp-ports", _port_range, "",
            "UDP port range for the server's WebRTC peers, e.g. 40000-40999; empty: any.",
            "webrtc"),
    Setting("RTC_CONSENT_TIMEOUT", "--rtc-consent-timeout", _consent_timeout, "30s",
            "How long the server's WebRTC peers keep sending to a browser that answers none "
            "of their ICE consent checks (RFC 7675); a check goes every sixth of it and waits "
            "up to all of it (7.5s at most) for a late answer. 1s-10m. Shorter notices a "
            "vanished peer sooner; longer keeps a starved or badly connected one.", "webrtc"),
    # WebSocket behaviour and limits
    Setting("HEARTBEAT", "--heartbeat", _positive_duration, "20s",
            "WebSocket ping interval; a connection silent for this long after a ping is "
            "dropped.", "limits"),
    Setting("WS_MAX_MSG", "--ws-max-msg", _bounded_size(128), "1MiB",
            "Largest WebSocket message accepted (bytes).", "limits"),
    Setting("WS_READ_BUF", "--ws-read-buf", _bounded_size(256), "2KiB",
            "Initial per-connection read buffer of the /ws fast path (grows on demand).",
            "limits"),
    Setting("WS_WRITE_BUF", "--ws-write-buf", _bounded_size(1024), "64KiB",
            "Per-connection kernel-side write buffer high-water mark before frames queue in "
            "the send buffer.", "limits"),
    Setting("WS_SEND_BUFFER", "--ws-send-buffer", _int(1), "64",
            "Messages queued for a client that is not reading before it is disconnected.",
            "limits"),
    Setting("WS_SEND_TIMEOUT", "--ws-send-timeout", _positive_duration, "2s",
            "How long a client may keep queued messages unsent before it is disconnected.",
            "limits"),
    Setting("WS_MSG_RATE", "--ws-msg-rate", parse_rate, "2000/10s",
            "Messages one connection may send (WebSocket frames on every path, Engine.IO "
            "packets of a WebSocket-only Socket.IO client, Socket.IO events of a polling "
            "one); past it the connection is closed (1008, or a Socket.IO disconnect): a "
            "flood of frames costs the server a parse each. 0 disables.", "limits"),
    Setting("WS_ERROR_RATE", "--ws-error-rate", parse_rate, "100/10s",
            "Refused messages (each answered with an error) one connection may cause; past "
            "it the connection is closed (1008, or a Socket.IO disconnect). 0 disables.",
            "limits"),
    Setting("WS_PENDING_MAX", "--ws-pending-max", _int(1), "256",
            "Frames a connection may send while its join/leave is still being processed; "
            "more get error queue_full.", "limits"),
    Setting("SDP_MAX_BYTES", "--sdp-max-bytes", _bounded_size(1024), "64KiB",
            "Largest session description accepted in any dialect (characters).", "limits"),
    Setting("SDP_MAX_MEDIA", "--sdp-max-media", _int(1, 1024), "64",
            "Most media sections (m= lines) in a session description.", "limits"),
    Setting("MAX_ROOMS", "--max-rooms", _int(1), "1000", "Rooms per server.", "limits"),
    Setting("MAX_ROOM_MEMBERS", "--max-room-members", _int(1), "50",
            "Members per room.", "limits"),
    Setting("ID_PROBE_TIMEOUT", "--id-probe-timeout", _positive_duration, "3s",
            "A join for a client ID another connection holds pings that connection first; "
            "if it does not answer within this time (a half-open socket), the newcomer takes "
            "the ID and the old connection is closed with 4001.", "limits"),
    Setting("MAX_ID_LENGTH", "--max-id-length", _int(1, 1024), "64",
            "Longest room or client ID (characters).", "limits"),
    Setting("ROOM_TTL", "--room-ttl", _positive_duration, "10m",
            "Pairing code time-to-live (seed 004).", "limits"),
    Setting("PAIR_CODE_DIGITS", "--pair-code-digits", _int(1, 12), "4",
            "Digits in a pairing code (seed 004 uses 4); when every code is live, minting "
            "answers 503 + Retry-After.", "limits"),
    Setting("PAIR_MAILBOX_SIZE", "--pair-mailbox-size", _int(1), "256",
            "Unacknowledged mailbox messages held per pair side before 'send' is refused.",
            "limits"),
    Setting("PAIR_REDEEM_FAILURES_PER_MIN", "--pair-redeem-failures-per-min", _int(0), "20",
            "Failed code redeems per client IP per minute before 429 (stops guessing); an "
            "IPv6 /64 counts as one IP. 0 disables.", "limits"),
    Setting("PAIR_MAILBOX_BYTES", "--pair-mailbox-bytes", _bounded_size(1024), "1MiB",
            "Unacknowledged mailbox bytes held per pair side before 'send' is refused "
            "(queue_full).", "limits"),
    Setting("PAIR_MAILBOX_TOTAL", "--pair-mailbox-total", _bounded_size(1024), "256MiB",
            "Mailbox bytes all pairs of this server may hold together; past it every 'send' "
            "gets queue_full until messages are acknowledged or pairs expire.", "limits"),
    Setting("PAIR_MINTS_PER_MIN", "--pair-mints-per-min", _int(0), "30",
            "Codes one client IP may mint per minute (429 + Retry-After); an IPv6 /64 counts "
            "as one IP. 0 disables.", "limits"),
    Setting("PAIR_MAX_PER_IP", "--pair-max-per-ip", _int(0), "20",
            "Live pairs one client IP may have minted at once (429 until one expires); 0 "
            "disables.", "limits"),
    Setting("PAIR_REDEEM_BUDGET_PER_MIN", "--pair-redeem-budget-per-min", _int(0), "100",
            "Failed code redeems per minute from all clients together; past it every redeem "
            "gets 429 for the rest of the minute, rtchub_pair_codes_total{event="
            "\"budget_exhausted\"} counts and one warning is logged (someone is guessing "
            "codes: docs/security.md has the odds). 0 disables.", "limits"),
    # matchmaking (seed 001, Socket.IO at /socket.io/)
    Setting("MATCH_REQUEST_RATE", "--match-request-rate", parse_rate, "1/5s",
            "request-room events per user (count/window, fixed window); 0 disables.", "match"),
    Setting("MATCH_MESSAGE_RATE", "--match-message-rate", parse_rate, "10/1m",
            "newMessage chat events per user (count/window, fixed window); 0 disables.",
            "match"),
    Setting("MATCH_OFFER_RATE", "--match-offer-rate", parse_rate, "10/10s",
            "negotiation-call-offer and -answer events per user (count/window); more get "
            "rate_limited. 0 disables.", "match"),
    Setting("MATCH_CANDIDATE_RATE", "--match-candidate-rate", parse_rate, "100/10s",
            "send-new-ice-candidates events per user (count/window); more get rate_limited. "
            "0 disables.", "match"),
    Setting("MATCH_MAX_NAME", "--match-max-name", _int(1, 1024), "64",
            "Longest display name in request-room (characters).", "match"),
    Setting("MATCH_MAX_MESSAGE", "--match-max-message", _int(1, 1 << 20), "1000",
            "Longest chat message (characters).", "match"),
    Setting("MATCH_MAX_IMAGE", "--match-max-image", _bounded_size(64), "32KiB",
            "Longest userImage (characters); any string, passed to the partner as sent.", "match"),
    Setting("MATCH_MAX_QUEUE", "--match-max-queue", _int(1), "10000",
            "Users waiting for a match at once; more get queue_full.", "match"),
    # voice broadcast (seed 002)
    Setting("VOICE_MAX_STREAMS", "--voice-max-streams", _int(1), "32",
            "Live voice streams (senders) per server.", "limits"),
    Setting("VOICE_MAX_RECEIVERS", "--voice-max-receivers", _int(1), "500",
            "WebRTC receivers per voice stream.", "limits"),
    Setting("VOICE_ANSWER_TIMEOUT", "--voice-answer-timeout", _positive_duration, "30s",
            "How long the server's offer to a receiver waits for webrtc_answer.", "limits"),
    Setting("VOICE_OFFER_RATE", "--voice-offer-rate", parse_rate, "5/10s",
            "webrtc_offer and start_receiving messages per voice connection (count/window; "
            "each builds a server-side peer connection); more get rate_limited. 0 disables.",
            "limits"),
    Setting("VOICE_CANDIDATE_RATE", "--voice-candidate-rate", parse_rate, "100/10s",
            "ice_candidate messages per voice connection (count/window); more get "
            "rate_limited. 0 disables.", "limits"),
    Setting("MP3_MAX_LISTENERS", "--mp3-max-listeners", _int(1), "500",
            "HTTP MP3 listeners per voice stream.", "limits"),
    Setting("MP3_LISTENER_BUFFER", "--mp3-listener-buffer", _int(1), "64",
            "MP3 chunks (about 100 ms each) queued for a listener before it is dropped as "
            "too slow.", "limits"),
    # call rooms (seed 003)
    Setting("CALL_TOKEN_SECRET", "--call-token-secret", _text, "",
            "HS256 secret of call-room join tokens (at least 32 bytes; make one with "
            "'openssl rand -hex 32'; 'rtchub token' mints tokens with it). With it, joining a "
            "call room needs a token naming the room, unless CALL_ALLOW_GUESTS. Empty: dev "
            "mode, everyone joins call rooms as a guest (said in one line at start). Seed "
            "000's mesh rooms stay open either way.", "calls"),
    Setting("CALL_ALLOW_GUESTS", "--call-allow-guests", parse_bool, "false",
            "With CALL_TOKEN_SECRET set: true lets a join without a token in as a guest "
            "(publish, subscribe, record). A bad token is refused all the same.", "calls"),
    Setting("CALL_AUDIO", "--call-audio", parse_bool, "true",
            "Audio in call rooms; false refuses every audio section.", "calls"),
    Setting("CALL_AUDIO_CODECS", "--call-audio-codecs", parse_audio_codecs, "opus",
            "Audio codecs offered, preferred first: opus, g722, pcmu, pcma. At least one "
            "while CALL_AUDIO is on; a participant that offers none gets "
            "codec_not_supported.", "calls"),
    Setting("CALL_AUDIO_MAX_BITRATE", "--call-audio-max-bitrate", parse_bitrate, "128k",
            "Audio bitrate cap put in the SDP (bits/s: 128k, 64000), 6k-510k.", "calls"),
    Setting("CALL_VIDEO", "--call-video", parse_bool, "true",
            "Video in call rooms (camera and screen); false refuses every video section.",
            "calls"),
    Setting("CALL_VIDEO_CODECS", "--call-video-codecs", parse_video_codecs, "VP8,H264",
            "Video codecs offered, preferred first: VP8, H264. At least one while CALL_VIDEO "
            "is on.", "calls"),
    Setting("CALL_VIDEO_MIN_BITRATE", "--call-video-min-bitrate", parse_bitrate, "100k",
            "Floor of the video bitrate the SFU asks publishers for (REMB), at least 10k and "
            "at most CALL_VIDEO_MAX_BITRATE.", "calls"),
    Setting("CALL_VIDEO_MAX_BITRATE", "--call-video-max-bitrate", parse_bitrate, "2.5M",
            "Video bitrate cap in the SDP and the REMB sent to publishers, at most 100M.",
            "calls"),
    Setting("CALL_VIDEO_MAX_WIDTH", "--call-video-max-width", _int(16, 7680), "1920",
            "Largest video width asked of publishers (pixels, 16-7680): with the height, "
            "VP8 max-fs in the server's answers.", "calls"),
    Setting("CALL_VIDEO_MAX_HEIGHT", "--call-video-max-height", _int(16, 4320), "1080",
            "Largest video height asked of publishers (pixels, 16-4320).", "calls"),
    Setting("CALL_VIDEO_MAX_FPS", "--call-video-max-fps", _int(1, 120), "30",
            "Highest video frame rate asked of publishers (1-120): VP8 max-fr in the "
            "server's answers. The browser app applies both; Chromium and aiortc alone "
            "do not (docs/calls.md).", "calls"),
    Setting("CALL_SIGNALING_TIMEOUT", "--call-signaling-timeout", _positive_duration, "30s",
            "How long the server's offer to a participant waits for its answer before "
            "signaling_timeout.", "calls"),
    Setting("CALL_MAX_MEMBERS", "--call-max-members", _int(1), None,
            "Participants per call room unless the room was created with its own limit; at "
            "most MAX_ROOM_MEMBERS. Default: MAX_ROOM_MEMBERS.", "calls"),
    Setting("RECORDING_PATH", "--recording-path", _text, "recordings",
            "Directory recordings are written under (one directory per recording, named by "
            "room and start time); created when the first recording starts.", "calls"),
    Setting("CALL_QUALITY_INTERVAL", "--call-quality-interval", _positive_duration, "5s",
            "How often the quality monitor measures each SFU participant's connection (loss, "
            "jitter, round-trip time, bitrate, score) and sends the room's quality frame "
            "when someone's changed; 250ms-1h.", "calls"),
    Setting("CALL_QUALITY_MAX_LOSS", "--call-quality-max-loss", parse_percent, "5",
            "Packet loss (percent of packets, 0-100) above which a participant's quality "
            "carries a high packet loss warning.", "calls"),
    Setting("CALL_QUALITY_MAX_JITTER", "--call-quality-max-jitter", _positive_duration,
            "30ms", "Jitter above which a participant's quality carries a warning.", "calls"),
    Setting("CALL_QUALITY_MAX_RTT", "--call-quality-max-rtt", _positive_duration, "300ms",
            "Round-trip time above which a participant's quality carries a high latency "
            "warning.", "calls"),
    Setting("CALL_QUALITY_MIN_BITRATE", "--call-quality-min-bitrate", parse_bitrate, "100k",
            "While video flows on a participant's connection, a total bitrate below this "
            "gives a low bitrate warning (bits/s; 0 never warns).", "calls"),
    Setting("CALL_ADAPTIVE_QUALITY", "--call-adaptive-quality", parse_bool, "true",
            "In SFU rooms, pick each subscriber's simulcast layer from its bandwidth estimate, "
            "loss and round-trip time (down fast, up slowly) within the quality it asked for, "
            "and cap what publishers send when nobody needs their top layer.", "calls"),
    Setting("CALL_ADAPTIVE_UP_AFTER", "--call-adaptive-up-after", parse_duration, "8s",
            "How long a subscriber's link must stay good (loss at most 2 percent, round trip "
            "below 500ms, an estimate not pointing at congestion) before adaptive quality "
            "raises its layer by one, and how long after a raise only loss or round trip "
            "take it back down; 0s-10m. Shorter climbs back sooner after a loss and asks "
            "publishers for more keyframes.", "calls"),
    # observability
    Setting("LOG_LEVEL", "--log-level", _log_level, "info",
            "debug, info, warning, error.", "observability"),
    Setting("LOG_FORMAT", "--log-format", _log_format, "text",
            "text (one key=value line per event) or json (one JSON object per line).",
            "observability"),
    Setting("LOG_FAULT_RATE", "--log-fault-rate", parse_rate, "10/10s",
            "Lines logged about client mistakes (malformed packets, bad request heads, "
            "resets) per window, each one line at info without a traceback; the next line "
            "says how many were left out. Server errors have a bound of the same size.",
            "observability"),
    Setting("METRICS_ROUTE", "--metrics-route", _text, "/metrics",
            "Path of the Prometheus endpoint.", "observability"),
    Setting("DASHBOARD_TOKEN", "--dashboard-token", _text, "",
            "Admin token of the live dashboard at /dashboard (at least 16 characters; make "
            "one with 'openssl rand -hex 32'). Sent as 'Authorization: Bearer', or typed "
            "once into the dashboard's login form. Empty: /dashboard answers 404.",
            "observability"),
    # cluster
    Setting("REDIS_URL", "--redis-url", _text, "",
            "redis:// URL of the backplane shared by several nodes; empty: in-memory.",
            "cluster"),
    Setting("CLUSTER_NODE_TTL", "--cluster-node-ttl", _positive_duration, "15s",
            "With REDIS_URL: a node that sent no heartbeat for this long is lost, and what "
            "its connections held is swept (heartbeats every third of it).", "cluster"),
    Setting("CLUSTER_START_WAIT", "--cluster-start-wait", _positive_duration, "5s",
            "With REDIS_URL: how long 'rtchub serve' waits for Redis to answer at start "
            "before it refuses to start (one line naming REDIS_URL).", "cluster"),
    Setting("NODE_URL", "--node-url", _node_url, "",
            "This node's own public base URL (https://node-b.example.com), as a browser "
            "reaches it past the load balancer. A join for an SFU room hosted here that "
            "lands on another node is refused with room_elsewhere carrying this URL, and "
            "the browser app goes there. Empty: room_elsewhere names the node only.",
            "cluster"),
)
