"""Configuration: parsing, aliases, and one-line start-up errors naming the variable."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rtchub.config import ConfigError, ListenAddress, load, parse_listen_address
from rtchub.config.settings import parse_duration, parse_size
from tests.support import self_signed


@pytest.mark.parametrize("text,expected", [
    (":8080", ListenAddress(None, 8080)),
    ("0.0.0.0:8080", ListenAddress("0.0.0.0", 8080)),
    ("[::]:8080", ListenAddress("::", 8080)),
    ("localhost:80", ListenAddress("localhost", 80)),
    ("unix:/var/run/webrtc.sock", ListenAddress(path="/var/run/webrtc.sock")),
])
def test_listen_addresses(text: str, expected: ListenAddress) -> None:
    assert parse_listen_address(text) == expected


def test_durations_and_sizes() -> None:
    assert parse_duration("20s") == 20
    assert parse_duration("1.5") == 1.5
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1h30m") == 5400
    assert parse_size("1MiB") == 1 << 20
    assert parse_size("64KiB") == 65536
    assert parse_size("1048576") == 1048576


def test_defaults() -> None:
    config = load({})
    assert config.addr == ListenAddress("0.0.0.0", 8080)
    assert config.stream_addr == ListenAddress("0.0.0.0", 8081)  # port 8081 on ADDR's host
    assert config.origins.allow_all
    assert config.rtc_config == {"iceServers": [{"urls": "stun:stun.l.google.com:19302"}]}
    limits = config.limits
    assert (limits.max_rooms, limits.max_room_members, limits.max_id_length,
            limits.send_buffer, limits.send_timeout, limits.max_message_bytes) == (
        1000, 50, 64, 64, 2.0, 1 << 20)
    assert config.heartbeat == 20 and limits.room_ttl == 600


def test_aliases_and_precedence() -> None:
    assert load({"HOST": "127.0.0.1", "PORT": "1234"}).addr == ListenAddress("127.0.0.1", 1234)
    assert load({"ADDR": ":9000", "PORT": "1234"}).addr == ListenAddress(None, 9000)
    assert load({"ADDR": ":9000"}, {"addr": ":9001"}).addr.port == 9001
    assert not load({"CORS_ORIGINS": "a.com"}).origins.allows("https://b.com")
    assert load({"CORS_ORIGINS": "a.com", "DEV": "true"}).origins.allows("https://b.com")
    wins = load({"WS_ALLOWED_ORIGINS": "a.com", "DEV": "true"}).origins
    assert wins.allows("https://a.com") and not wins.allows("https://b.com")
    assert load({"WS_ALLOWED_ORIGINS": "*", "CORS_ORIGINS": "a.com"}).origins.allow_all


@pytest.mark.parametrize("env,fragment", [
    ({"ADDR": "8080"}, "ADDR='8080': expected"),
    ({"ADDR": "[::1:80"}, "ADDR="),
    ({"PORT": "99999"}, "PORT='99999': expected an integer between 0 and 65535"),
    ({"HEARTBEAT": "soon"}, "HEARTBEAT='soon': expected a duration"),
    ({"HEARTBEAT": "0s"}, "HEARTBEAT='0s': expected a duration greater than zero"),
    ({"WS_MAX_MSG": "lots"}, "WS_MAX_MSG='lots': expected a byte count"),
    ({"MAX_ROOMS": "0"}, "MAX_ROOMS='0': expected an integer >= 1"),
    ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL='chatty': expected one of"),
    ({"DEV": "maybe"}, "DEV='maybe': expected true or false"),
    ({"RTC_CONFIG_JSON": "{"}, "RTC_CONFIG_JSON='{': expected a JSON object"),
    ({"RTC_CONFIG_JSON": '{"iceServers": [{"urls": "http://x"}]}'}, "stun:"),
    ({"RTC_CONFIG_JSON": '{"iceServers": [{"urls": "turn:t:3478"}]}'}, "username"),
    ({"RTC_CONFIG_JSON": '{"iceTransportPolicy": "none"}'}, "iceTransportPolicy"),
    ({"RTC_NODE_IP": "localhost"}, "RTC_NODE_IP='localhost': expected a comma-separated"),
    ({"RTC_UDP_PORTS": "9-1"}, "RTC_UDP_PORTS='9-1'"),
    ({"TLS_CERT_FILE": "/nonexistent.pem", "TLS_KEY_FILE": "/nonexistent.pem"},
     "TLS_CERT_FILE='/nonexistent.pem': expected a readable PEM file"),
    ({"TRUST_PROXY": "proxy"}, "TRUST_PROXY='proxy'"),
    ({"METRICS_ROUTE": "metrics"}, "METRICS_ROUTE='metrics'"),
    ({"NODE_URL": "node-b.example.com"}, "NODE_URL='node-b.example.com': expected an absolute"),
    ({"NODE_URL": "https://b.example/?x=1"}, "NODE_URL='https://b.example/?x=1'"),
])
def test_bad_values_name_variable_value_and_expectation(env: dict[str, str], fragment: str
                                                        ) -> None:
    with pytest.raises(ConfigError) as info:
        load(env)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_node_url_is_kept_without_its_trailing_slash() -> None:
    assert load({"NODE_URL": "https://b.example.com/rtc/"}).node_url == "https://b.example.com/rtc"
    assert load({}).node_url == ""


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="TLS_CERT_FILE and TLS_KEY_FILE must be set together"):
        load({"TLS_CERT_FILE": str(cert)})


def test_cli_refuses_to_start_with_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "rtchub", "serve"],
                          env={"PATH": "/usr/bin:/bin", "HEARTBEAT": "often"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rtchub: configuration error: HEARTBEAT='often': expected a duration such as 20s, "
        "500ms, 10m or a number of seconds"]


def test_cli_help_documents_alias_precedence() -> None:
    proc = subprocess.run([sys.executable, "-m", "rtchub", "serve", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "ADDR wins over HOST/PORT" in text
    assert "WS_ALLOWED_ORIGINS wins over DEV and CORS_ORIGINS" in text
    assert "--max-room-members MAX_ROOM_MEMBERS" in text


def test_configuration_doc_lists_every_setting() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    table = doc.split("<!-- settings-table:start -->\n", 1)[1].split(
        "\n<!-- settings-table:end -->", 1)[0]
    proc = subprocess.run([sys.executable, "-m", "rtchub", "config", "--markdown"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert table == proc.stdout.strip(), "regenerate docs/configuration.md's settings table"


def test_stream_addr_follows_the_host_of_addr() -> None:
    assert load({"ADDR": "127.0.0.1:9000"}).stream_addr == ListenAddress("127.0.0.1", 8081)
    assert load({"ADDR": "[::1]:9000"}).stream_addr == ListenAddress("::1", 8081)
    assert load({"HOST": "127.0.0.2", "PORT": "9000"}).stream_addr == ListenAddress(
        "127.0.0.2", 8081)
    assert load({"ADDR": "unix:/tmp/rtchub.sock"}).stream_addr is None
    assert load({"ADDR": "127.0.0.1:9000", "STREAM_ADDR": ""}).stream_addr is None
    assert load({"ADDR": "127.0.0.1:9000", "STREAM_ADDR": ":9999"}).stream_addr == \
        ListenAddress(None, 9999)


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``rtchub serve`` that is expected to refuse to start."""
    return subprocess.run([sys.executable, "-m", "rtchub", "serve", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=60, check=False)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused start prints (no traceback, exit code 2)."""
    lines = [line for line in proc.stderr.strip().splitlines() if "level=" not in line]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_start_up_failures_are_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(serve("--addr", f"127.0.0.1:{port}", "--stream-addr", ""))
        assert line == (f"rtchub: cannot start: ADDR='127.0.0.1:{port}': the address is "
                        "already in use (another process listens there); stop it or choose "
                        "another ADDR")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    line = one_line(serve("--addr", "127.0.0.1:0", "--tls-cert-file", str(bad),
                          "--tls-key-file", str(bad)))
    assert line.startswith(f"rtchub: cannot start: TLS_CERT_FILE='{bad}' / TLS_KEY_FILE=")
    assert "not a PEM certificate and its private key" in line
    cert, _ = self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = self_signed(other)
    line = one_line(serve("--addr", "127.0.0.1:0", "--tls-cert-file", cert,
                          "--tls-key-file", wrong_key))
    assert line.startswith(f"rtchub: cannot start: TLS_KEY_FILE='{wrong_key}': this key does "
                           "not belong to the certificate")


async def test_an_optional_listener_that_cannot_bind_is_one_line_and_no_stop() -> None:
    with socket.socket() as taken, socket.socket() as free:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        free.bind(("127.0.0.1", 0))
        busy, port = taken.getsockname()[1], free.getsockname()[1]
        free.close()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}",
            "--stream-addr", f"127.0.0.1:{busy}", stderr=asyncio.subprocess.PIPE)
        assert proc.stderr is not None
        lines = []
        while b"rtchub ready" not in (line := await asyncio.wait_for(proc.stderr.readline(),
                                                                     30)):
            lines.append(line.decode())
        warned = [x for x in lines if "STREAM_ADDR=" in x]
        assert len(warned) == 1 and "already in use" in warned[0], lines
        assert "/stream/* is served on ADDR only" in warned[0]
        # the ready line says what to open
        for url in ("/match", "/voice.html", "/metrics"):
            assert f"http://127.0.0.1:{port}{url}" in line.decode()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


def test_an_unreachable_redis_url_is_one_line_without_the_password() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there
        line = one_line(serve("--addr", "127.0.0.1:0", "--stream-addr", "",
                              env={"REDIS_URL": f"redis://u:secret@127.0.0.1:{port}/0",
                                   "CLUSTER_START_WAIT": "0.5s"}))
    assert line.startswith(f"rtchub: cannot start: REDIS_URL='redis://u:***@127.0.0.1:{port}/0'"
                           ": Redis does not answer within 0.5 s (CLUSTER_START_WAIT)")
    assert "secret" not in line
