"""Configuration: frozen dataclasses built once by :func:`load` from env and flags.

A flag beats its environment variable. Where two seeds name the same setting,
one governs and the other is an alias:

* ``ADDR`` wins; ``HOST``/``PORT`` (seed 004) are read only when ``ADDR`` is unset.
* ``WS_ALLOWED_ORIGINS`` wins; otherwise ``DEV=true`` allows every origin;
  otherwise ``CORS_ORIGINS`` is the allow list; otherwise every origin is allowed.

Every bad value raises :class:`ConfigError` whose one-line message names the
variable, the value and what was expected.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from rtchub.config.calls import CallSettings
from rtchub.config.settings import SETTINGS, Setting

__all__ = [
    "CallSettings",
    "Config",
    "ConfigError",
    "Limits",
    "ListenAddress",
    "OriginPolicy",
    "TurnConfig",
    "load",
    "parse_listen_address",
    "parse_rtc_config",
]


class ConfigError(ValueError):
    """A configuration value that rtchub cannot start with."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where a listener binds: a TCP host/port or a Unix socket path."""

    host: str | None = None
    port: int = 0
    path: str | None = None

    def __post_init__(self) -> None:
        if self.path is None and not (0 <= self.port <= 65535):
            raise ValueError("a port between 0 and 65535")

    @property
    def is_unix(self) -> bool:
        """True for ``unix:/path`` addresses."""
        return self.path is not None

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"


def parse_listen_address(text: str) -> ListenAddress:
    """Parse ``:8080``, ``0.0.0.0:8080``, ``[::]:8080``, ``localhost:80`` or ``unix:/path``."""
    text = text.strip()
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise ValueError("unix:/path/to/socket")
        return ListenAddress(path=path)
    host: str
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1 :].startswith(":"):
            raise ValueError("[ipv6]:port")
        host, port_text = text[1:end], text[end + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("[ipv6]:port with a valid IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError("host:port, :port, [::]:port or unix:/path")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError("a port number between 0 and 65535 after the colon")
    return ListenAddress(host=host or None, port=int(port_text))


def parse_rtc_config(text: str) -> dict[str, Any]:
    """Validate an RTCConfiguration JSON object (the subset browsers accept)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("a JSON object such as {\"iceServers\": [...]}") from None
    if not isinstance(value, dict):
        raise ValueError("a JSON object such as {\"iceServers\": [...]}")
    servers = value.get("iceServers", [])
    if not isinstance(servers, list):
        raise ValueError("iceServers to be a list")
    for server in servers:
        if not isinstance(server, dict) or "urls" not in server:
            raise ValueError("each iceServers entry to be an object with urls")
        urls = server["urls"]
        url_list = [urls] if isinstance(urls, str) else urls
        if not isinstance(url_list, list) or not url_list or not all(
            isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns")
            for u in url_list
        ):
            raise ValueError("urls to be stun:, stuns:, turn: or turns: URLs")
        is_turn = any(u.startswith("turn") for u in url_list)
        for key in ("username", "credential"):
            if key in server and not isinstance(server[key], str):
                raise ValueError(f"{key} to be a string")
            if is_turn and key not in server:
                raise ValueError(f"a {key} for TURN servers")
    policy = value.get("iceTransportPolicy", "all")
    if policy not in ("all", "relay"):
        raise ValueError("iceTransportPolicy to be 'all' or 'relay'")
    bundle = value.get("bundlePolicy", "balanced")
    if bundle not in ("balanced", "max-compat", "max-bundle"):
        raise ValueError("bundlePolicy to be balanced, max-compat or max-bundle")
    return value


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Which browser Origins may open WebSockets. ``allow_all`` or a list of entries.

    An entry with a scheme (``https://app.example.com``) must match the Origin
    exactly; a bare host (``example.com`` or ``localhost:8080``) matches the
    Origin's host, with or without port. Requests without an Origin header
    (non-browser clients) are allowed.
    """

    allow_all: bool = True
    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> OriginPolicy:
        """Parse a comma-separated list; ``*`` anywhere allows all."""
        entries = tuple(part.strip().lower().rstrip("/") for part in text.split(",")
                        if part.strip())
        if not entries or "*" in entries:
            return cls(allow_all=True)
        return cls(allow_all=False, entries=entries)

    def allows(self, origin: str | None) -> bool:
        """Decide one request's Origin header."""
        if self.allow_all or origin is None:
            return True
        origin = origin.strip().lower().rstrip("/")
        parts = urlsplit(origin)
        netloc, hostname = parts.netloc, parts.hostname or ""
        for entry in self.entries:
            if "://" in entry:
                if entry == origin:
                    return True
            elif entry in (netloc, hostname):
                return True
        return False


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """A TURN server sharing a secret with rtchub (coturn's REST convention): its URLs,
    the secret (kept out of ``repr``, so out of logs), how long served credentials work,
    and the user part of their usernames."""

    urls: tuple[str, ...]
    secret: str = field(repr=False)
    ttl: float = 86400.0
    user: str = "rtchub"

    def __post_init__(self) -> None:
        if not self.urls or not all(u.split(":", 1)[0] in ("turn", "turns")
                                    for u in self.urls):
            raise ValueError("turn: or turns: URLs")
        if not self.secret:
            raise ValueError("a shared secret")
        if self.ttl <= 0:
            raise ValueError("a positive TTL")
        if ":" in self.user:
            raise ValueError("a user name without ':'")


def _turn(v: Mapping[str, Any]) -> TurnConfig | None:
    urls = tuple(u.strip() for u in v["TURN_URLS"].split(",") if u.strip())
    if not urls and not v["TURN_SECRET"]:
        return None
    if not urls:
        raise ConfigError("TURN_SECRET is set but TURN_URLS is empty: expected the TURN "
                          "server's turn: URLs beside its secret")
    if not v["TURN_SECRET"]:
        raise ConfigError(f"TURN_URLS={v['TURN_URLS']!r}: expected TURN_SECRET (the "
                          "server's static-auth-secret) to be set too")
    if not all(u.split(":", 1)[0] in ("turn", "turns") for u in urls):
        raise ConfigError(f"TURN_URLS={v['TURN_URLS']!r}: expected comma-separated turn: "
                          "or turns: URLs")
    if ":" in v["TURN_USER"] or not v["TURN_USER"]:
        raise ConfigError(f"TURN_USER={v['TURN_USER']!r}: expected a name without ':'")
    return TurnConfig(urls, v["TURN_SECRET"], v["TURN_TTL"], v["TURN_USER"])


@dataclass(frozen=True, slots=True)
class Limits:
    """The configurable limits (defaults from seed 000)."""

    max_rooms: int = 1000
    max_room_members: int = 50
    max_id_length: int = 64
    id_probe_timeout: float = 3.0
    send_buffer: int = 64
    send_timeout: float = 2.0
    pending_max: int = 256
    ws_msg_rate: tuple[int, float] = (2000, 10.0)
    ws_error_rate: tuple[int, float] = (100, 10.0)
    max_message_bytes: int = 1 << 20
    sdp_max_bytes: int = 64 * 1024
    sdp_max_media: int = 64
    read_buffer: int = 2048
    write_buffer: int = 64 * 1024
    http_rate_per_min: int = 0
    ws_rate_per_min: int = 0
    max_conns_per_ip: int = 1000
    room_ttl: float = 600.0
    pair_code_digits: int = 4
    pair_mailbox_size: int = 256
    pair_redeem_failures_per_min: int = 20
    pair_mailbox_bytes: int = 1 << 20
    pair_mailbox_total: int = 256 << 20
    pair_mints_per_min: int = 30
    pair_max_per_ip: int = 20
    pair_redeem_budget_per_min: int = 100
    match_request_rate: tuple[int, float] = (1, 5.0)
    match_message_rate: tuple[int, float] = (10, 60.0)
    match_offer_rate: tuple[int, float] = (10, 10.0)
    match_candidate_rate: tuple[int, float] = (100, 10.0)
    match_max_name: int = 64
    match_max_message: int = 1000
    match_max_image: int = 32 * 1024
    match_max_queue: int = 10_000
    voice_max_streams: int = 32
    voice_max_receivers: int = 500
    voice_answer_timeout: float = 30.0
    voice_offer_rate: tuple[int, float] = (5, 10.0)
    voice_candidate_rate: tuple[int, float] = (100, 10.0)
    mp3_max_listeners: int = 500
    mp3_listener_buffer: int = 64


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a server needs, validated. Build with :func:`load` or directly in tests."""

    addr: ListenAddress = field(default_factory=lambda: ListenAddress(port=8080))
    stream_addr: ListenAddress | None = None
    origins: OriginPolicy = field(default_factory=OriginPolicy)
    rtc_config: Mapping[str, Any] = field(default_factory=lambda: {"iceServers": []})
    turn: TurnConfig | None = None
    node_ips: tuple[str, ...] = ()
    udp_ports: tuple[int, int] | None = None
    consent_timeout: float = 30.0  # RTC_CONSENT_TIMEOUT
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    heartbeat: float = 20.0
    head_timeout: float = 10.0
    shutdown_timeout: float = 10.0
    limits: Limits = field(default_factory=Limits)
    log_level: str = "INFO"
    log_format: str = "text"
    log_fault_rate: tuple[int, float] = (10, 10.0)
    metrics_route: str = "/metrics"
    dashboard_token: str | None = None
    redis_url: str | None = None
    cluster_node_ttl: float = 15.0
    cluster_start_wait: float = 5.0
    node_url: str = ""
    calls: CallSettings = field(default_factory=CallSettings)

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigError(
                "TLS_CERT_FILE and TLS_KEY_FILE must be set together: got only "
                + ("TLS_CERT_FILE" if self.tls_cert_file else "TLS_KEY_FILE")
            )
        if not self.metrics_route.startswith("/"):
            raise ConfigError(f"METRICS_ROUTE={self.metrics_route!r}: expected a path starting "
                              "with /")
        if self.dashboard_token is not None and len(self.dashboard_token) < 16:
            raise ConfigError(f"DASHBOARD_TOKEN: expected at least 16 characters, got "
                              f"{len(self.dashboard_token)} (make one with: openssl rand -hex 32)")

    @property
    def tls(self) -> bool:
        """True when HTTPS/WSS is configured."""
        return bool(self.tls_cert_file)


def _raw_values(environ: Mapping[str, str], flags: Mapping[str, str | None]) -> dict[str, str]:
    raw: dict[str, str] = {}
    for setting in SETTINGS:
        flag_value = flags.get(setting.dest)
        if flag_value is not None:
            raw[setting.name] = flag_value
        elif setting.name in environ:
            raw[setting.name] = environ[setting.name]
    return raw


def _parse(setting: Setting, raw: Mapping[str, str]) -> Any:
    text = raw.get(setting.name, setting.default)
    if text is None:
        return None
    try:
        return setting.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{setting.name}={text!r}: expected {exc}") from None


def _call_settings(v: Mapping[str, Any], raw: Mapping[str, str],
                   limits: Limits) -> CallSettings:
    max_members = v["CALL_MAX_MEMBERS"]
    if max_members is None:
        max_members = limits.max_room_members
    elif max_members > limits.max_room_members:
        raise ConfigError(f"CALL_MAX_MEMBERS={raw['CALL_MAX_MEMBERS']!r}: expected at most "
                          f"MAX_ROOM_MEMBERS ({limits.max_room_members})")
    return CallSettings(
        token_secret=v["CALL_TOKEN_SECRET"] or None,
        allow_guests=v["CALL_ALLOW_GUESTS"],
        audio_enabled=v["CALL_AUDIO"],
        audio_codecs=v["CALL_AUDIO_CODECS"],
        audio_max_bitrate=v["CALL_AUDIO_MAX_BITRATE"],
        video_enabled=v["CALL_VIDEO"],
        video_codecs=v["CALL_VIDEO_CODECS"],
        video_min_bitrate=v["CALL_VIDEO_MIN_BITRATE"],
        video_max_bitrate=v["CALL_VIDEO_MAX_BITRATE"],
        video_max_width=v["CALL_VIDEO_MAX_WIDTH"],
        video_max_height=v["CALL_VIDEO_MAX_HEIGHT"],
        video_max_fps=v["CALL_VIDEO_MAX_FPS"],
        signaling_timeout=v["CALL_SIGNALING_TIMEOUT"],
        max_members=max_members,
        recording_path=v["RECORDING_PATH"],
        quality_interval=v["CALL_QUALITY_INTERVAL"],
        quality_max_loss=v["CALL_QUALITY_MAX_LOSS"],
        quality_max_jitter=v["CALL_QUALITY_MAX_JITTER"],
        quality_max_rtt=v["CALL_QUALITY_MAX_RTT"],
        quality_min_bitrate=v["CALL_QUALITY_MIN_BITRATE"],
        adaptive_quality=v["CALL_ADAPTIVE_QUALITY"],
        adaptive_up_after=v["CALL_ADAPTIVE_UP_AFTER"],
    )


def load(environ: Mapping[str, str] | None = None,
         flags: Mapping[str, str | None] | None = None) -> Config:
    """Build a :class:`Config` from environment variables and CLI flag values."""
    environ = os.environ if environ is None else environ
    raw = _raw_values(environ, flags or {})
    v = {s.name: _parse(s, raw) for s in SETTINGS}

    def listen(name: str, text: str) -> ListenAddress:
        try:
            return parse_listen_address(text)
        except ValueError as exc:
            raise ConfigError(f"{name}={text!r}: expected {exc}") from None

    if v["ADDR"]:
        addr = listen("ADDR", v["ADDR"])
    else:
        host = v["HOST"] if v["HOST"] else "0.0.0.0"
        port = v["PORT"] if v["PORT"] is not None else 8080
        addr = ListenAddress(host=host, port=port)
    if v["STREAM_ADDR"] is None:  # unset: seed 002's port on ADDR's host
        stream_addr = None if addr.is_unix else ListenAddress(host=addr.host, port=8081)
    else:
        stream_addr = listen("STREAM_ADDR", v["STREAM_ADDR"]) if v["STREAM_ADDR"] else None

    if v["WS_ALLOWED_ORIGINS"] is not None:
        origins = OriginPolicy.parse(v["WS_ALLOWED_ORIGINS"])
    elif v["DEV"]:
        origins = OriginPolicy(allow_all=True)
    elif v["CORS_ORIGINS"]:
        origins = OriginPolicy.parse(v["CORS_ORIGINS"])
    else:
        origins = OriginPolicy(allow_all=True)

    try:
        rtc_config = parse_rtc_config(v["RTC_CONFIG_JSON"])
    except ValueError as exc:
        raise ConfigError(f"RTC_CONFIG_JSON={raw.get('RTC_CONFIG_JSON')!r}: expected {exc}"
                          ) from None

    for name in ("TLS_CERT_FILE", "TLS_KEY_FILE"):
        path = v[name]
        if path and not os.path.isfile(path):
            raise ConfigError(f"{name}={path!r}: expected a readable PEM file")
    proxies: tuple[str, ...] = ()
    if v["TRUST_PROXY"]:
        try:
            proxies = tuple(str(ipaddress.ip_address(p.strip()))
                            for p in v["TRUST_PROXY"].split(",") if p.strip())
        except ValueError:
            raise ConfigError(f"TRUST_PROXY={v['TRUST_PROXY']!r}: expected a comma-separated "
                              "list of IP addresses") from None
    limits = Limits(
        max_rooms=v["MAX_ROOMS"],
        max_room_members=v["MAX_ROOM_MEMBERS"],
        max_id_length=v["MAX_ID_LENGTH"],
        id_probe_timeout=v["ID_PROBE_TIMEOUT"],
        send_buffer=v["WS_SEND_BUFFER"],
        send_timeout=v["WS_SEND_TIMEOUT"],
        pending_max=v["WS_PENDING_MAX"],
        ws_msg_rate=v["WS_MSG_RATE"],
        ws_error_rate=v["WS_ERROR_RATE"],
        max_message_bytes=v["WS_MAX_MSG"],
        sdp_max_bytes=v["SDP_MAX_BYTES"],
        sdp_max_media=v["SDP_MAX_MEDIA"],
        read_buffer=v["WS_READ_BUF"],
        write_buffer=v["WS_WRITE_BUF"],
        http_rate_per_min=v["HTTP_RATE_PER_MIN"],
        ws_rate_per_min=v["WS_RATE_PER_MIN"],
        max_conns_per_ip=v["MAX_CONNS_PER_IP"],
        room_ttl=v["ROOM_TTL"],
        pair_code_digits=v["PAIR_CODE_DIGITS"],
        pair_mailbox_size=v["PAIR_MAILBOX_SIZE"],
        pair_redeem_failures_per_min=v["PAIR_REDEEM_FAILURES_PER_MIN"],
        pair_mailbox_bytes=v["PAIR_MAILBOX_BYTES"],
        pair_mailbox_total=v["PAIR_MAILBOX_TOTAL"],
        pair_mints_per_min=v["PAIR_MINTS_PER_MIN"],
        pair_max_per_ip=v["PAIR_MAX_PER_IP"],
        pair_redeem_budget_per_min=v["PAIR_REDEEM_BUDGET_PER_MIN"],
        match_request_rate=v["MATCH_REQUEST_RATE"],
        match_message_rate=v["MATCH_MESSAGE_RATE"],
        match_offer_rate=v["MATCH_OFFER_RATE"],
        match_candidate_rate=v["MATCH_CANDIDATE_RATE"],
        match_max_name=v["MATCH_MAX_NAME"],
        match_max_message=v["MATCH_MAX_MESSAGE"],
        match_max_image=v["MATCH_MAX_IMAGE"],
        match_max_queue=v["MATCH_MAX_QUEUE"],
        voice_max_streams=v["VOICE_MAX_STREAMS"],
        voice_max_receivers=v["VOICE_MAX_RECEIVERS"],
        voice_answer_timeout=v["VOICE_ANSWER_TIMEOUT"],
        voice_offer_rate=v["VOICE_OFFER_RATE"],
        voice_candidate_rate=v["VOICE_CANDIDATE_RATE"],
        mp3_max_listeners=v["MP3_MAX_LISTENERS"],
        mp3_listener_buffer=v["MP3_LISTENER_BUFFER"],
    )
    return Config(
        calls=_call_settings(v, raw, limits),
        addr=addr,
        stream_addr=stream_addr,
        origins=origins,
        rtc_config=rtc_config,
        turn=_turn(v),
        node_ips=v["RTC_NODE_IP"],
        udp_ports=v["RTC_UDP_PORTS"],
        consent_timeout=v["RTC_CONSENT_TIMEOUT"],
        tls_cert_file=v["TLS_CERT_FILE"] or None,
        tls_key_file=v["TLS_KEY_FILE"] or None,
        trusted_proxies=proxies,
        heartbeat=v["HEARTBEAT"],
        head_timeout=v["HTTP_HEAD_TIMEOUT"],
        shutdown_timeout=v["SHUTDOWN_TIMEOUT"],
        limits=limits,
        log_level=v["LOG_LEVEL"],
        log_format=v["LOG_FORMAT"],
        log_fault_rate=v["LOG_FAULT_RATE"],
        metrics_route=v["METRICS_ROUTE"],
        dashboard_token=v["DASHBOARD_TOKEN"] or None,
        redis_url=v["REDIS_URL"] or None,
        cluster_node_ttl=v["CLUSTER_NODE_TTL"],
        cluster_start_wait=v["CLUSTER_START_WAIT"],
        node_url=v["NODE_URL"],
    )
