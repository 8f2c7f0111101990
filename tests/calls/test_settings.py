"""Call rooms' settings: seed 003's defaults, every limit crossed, one line at start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from rtchub.config import CallSettings, ConfigError, load
from rtchub.config.calls import AUDIO_CODEC_NAMES, VIDEO_CODEC_NAMES, parse_bitrate
from rtchub.features.calls.configure import auth_policy, media_config
from rtchub.media.sfu.config import AUDIO_CODECS, VIDEO_CODECS

SECRET = "k" * 32


def test_defaults_are_seed_003s() -> None:
    calls = load({}).calls
    assert calls == CallSettings()
    assert (calls.audio_codecs, calls.audio_max_bitrate) == (("opus",), 128_000)
    assert calls.video_codecs == ("VP8", "H264")
    assert (calls.video_min_bitrate, calls.video_max_bitrate) == (100_000, 2_500_000)
    assert (calls.video_max_width, calls.video_max_height, calls.video_max_fps) == (
        1920, 1080, 30)
    assert calls.dev and not calls.allow_guests
    assert calls.max_members == 50 and calls.signaling_timeout == 30.0


@pytest.mark.parametrize("text,bits", [("128000", 128_000), ("128k", 128_000),
                                       ("128kbps", 128_000), ("2.5M", 2_500_000),
                                       ("2.5Mbps", 2_500_000), (" 64 K ", 64_000)])
def test_bitrates_parse(text: str, bits: int) -> None:
    assert parse_bitrate(text) == bits


@pytest.mark.parametrize("text", ["", "fast", "1.5G", "-5k", "5 k b"])
def test_bad_bitrates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="a bitrate such as"):
        parse_bitrate(text)


def test_the_codec_names_match_the_sfus_table() -> None:
    assert set(AUDIO_CODEC_NAMES) == set(AUDIO_CODECS)
    assert set(VIDEO_CODEC_NAMES) == set(VIDEO_CODECS)


# each limit: the last value accepted, then the first refused, with what the line says
@pytest.mark.parametrize("env,ok,bad,message", [
    ({}, {"CALL_AUDIO_MAX_BITRATE": "6k"}, {"CALL_AUDIO_MAX_BITRATE": "5999"},
     "CALL_AUDIO_MAX_BITRATE=5999: expected a bitrate between 6k and 510k"),
    ({}, {"CALL_AUDIO_MAX_BITRATE": "510k"}, {"CALL_AUDIO_MAX_BITRATE": "510001"},
     "CALL_AUDIO_MAX_BITRATE=510001: expected"),
    ({}, {"CALL_VIDEO_MIN_BITRATE": "10k"}, {"CALL_VIDEO_MIN_BITRATE": "9999"},
     "CALL_VIDEO_MIN_BITRATE=9999: expected at least 10k"),
    ({}, {"CALL_VIDEO_MAX_BITRATE": "100M"}, {"CALL_VIDEO_MAX_BITRATE": "100000001"},
     "CALL_VIDEO_MAX_BITRATE=100000001: expected at most 100M"),
    ({"CALL_VIDEO_MAX_BITRATE": "1M"}, {"CALL_VIDEO_MIN_BITRATE": "1M"},
     {"CALL_VIDEO_MIN_BITRATE": "1000001"},
     "CALL_VIDEO_MIN_BITRATE=1000001 is above CALL_VIDEO_MAX_BITRATE=1000000 (bits/s): "
     "expected min <= max"),
    ({}, {"CALL_VIDEO_MAX_WIDTH": "7680"}, {"CALL_VIDEO_MAX_WIDTH": "7681"},
     "CALL_VIDEO_MAX_WIDTH='7681': expected an integer between 16 and 7680"),
    ({}, {"CALL_VIDEO_MAX_WIDTH": "16"}, {"CALL_VIDEO_MAX_WIDTH": "15"},
     "CALL_VIDEO_MAX_WIDTH='15': expected an integer between 16 and 7680"),
    ({}, {"CALL_VIDEO_MAX_HEIGHT": "4320"}, {"CALL_VIDEO_MAX_HEIGHT": "4321"},
     "CALL_VIDEO_MAX_HEIGHT='4321': expected an integer between 16 and 4320"),
    ({}, {"CALL_VIDEO_MAX_FPS": "120"}, {"CALL_VIDEO_MAX_FPS": "121"},
     "CALL_VIDEO_MAX_FPS='121': expected an integer between 1 and 120"),
    ({}, {"CALL_VIDEO_MAX_FPS": "1"}, {"CALL_VIDEO_MAX_FPS": "0"},
     "CALL_VIDEO_MAX_FPS='0': expected an integer between 1 and 120"),
    ({}, {"CALL_SIGNALING_TIMEOUT": "1ms"}, {"CALL_SIGNALING_TIMEOUT": "0s"},
     "CALL_SIGNALING_TIMEOUT='0s': expected a duration greater than zero"),
    ({"MAX_ROOM_MEMBERS": "8"}, {"CALL_MAX_MEMBERS": "8"}, {"CALL_MAX_MEMBERS": "9"},
     "CALL_MAX_MEMBERS='9': expected at most MAX_ROOM_MEMBERS (8)"),
    ({}, {"CALL_MAX_MEMBERS": "1"}, {"CALL_MAX_MEMBERS": "0"},
     "CALL_MAX_MEMBERS='0': expected an integer >= 1"),
    ({}, {"CALL_TOKEN_SECRET": "k" * 32}, {"CALL_TOKEN_SECRET": "k" * 31},
     "CALL_TOKEN_SECRET: expected at least 32 bytes, got 31"),
    ({}, {"CALL_VIDEO_CODECS": "h264"}, {"CALL_VIDEO_CODECS": "VP9"},
     "CALL_VIDEO_CODECS='VP9': expected a comma-separated list of video codecs from vp8, "
     "h264 ('VP9' is not one)"),
    ({}, {"CALL_AUDIO_CODECS": "opus,g722"}, {"CALL_AUDIO_CODECS": "opus,aac"},
     "CALL_AUDIO_CODECS='opus,aac': expected a comma-separated list of audio codecs"),
    ({"CALL_VIDEO_CODECS": ""}, {"CALL_VIDEO": "false"}, {"CALL_VIDEO": "true"},
     "CALL_VIDEO_CODECS is empty while CALL_VIDEO is on: expected at least one codec"),
    ({"CALL_AUDIO_CODECS": " , "}, {"CALL_AUDIO": "off"}, {"CALL_AUDIO": "on"},
     "CALL_AUDIO_CODECS is empty while CALL_AUDIO is on"),
    ({}, {"RECORDING_PATH": "/tmp/rec"}, {"RECORDING_PATH": "  "},
     "RECORDING_PATH is empty: expected a directory for recordings"),
])
def test_each_limit_is_refused_where_it_is_crossed(env: dict[str, str], ok: dict[str, str],
                                                   bad: dict[str, str], message: str) -> None:
    load({**env, **ok})
    with pytest.raises(ConfigError) as refused:
        load({**env, **bad})
    assert str(refused.value).startswith(message)


def test_settings_map_onto_the_sfus_media_config() -> None:
    config = load({"CALL_AUDIO_CODECS": "g722,opus", "CALL_AUDIO_MAX_BITRATE": "64k",
                   "CALL_VIDEO_CODECS": "H264", "CALL_VIDEO_MIN_BITRATE": "200k",
                   "CALL_VIDEO_MAX_BITRATE": "1.5M", "CALL_SIGNALING_TIMEOUT": "5s",
                   "CALL_VIDEO_MAX_WIDTH": "640", "CALL_VIDEO_MAX_HEIGHT": "360",
                   "CALL_VIDEO_MAX_FPS": "15",
                   "RTC_NODE_IP": "127.0.0.1", "RTC_UDP_PORTS": "40000-40099"})
    media = media_config(config)
    assert media.allowed("audio") == ("audio/G722", "audio/opus")
    assert media.allowed("video") == ("video/H264",)
    assert (media.audio_max_bitrate, media.video_min_bitrate, media.video_max_bitrate) == (
        64_000, 200_000, 1_500_000)
    assert media.signaling_timeout == 5.0
    assert (media.video_max_width, media.video_max_height, media.video_max_fps) == (
        640, 360, 15)
    assert media.video_max_macroblocks == 40 * 23
    assert media.node_ips == ("127.0.0.1",) and media.udp_ports == (40000, 40099)
    assert media_config(load({"CALL_VIDEO": "false"})).allowed("video") == ()


def test_auth_policy_follows_the_secret_and_guests() -> None:
    assert auth_policy(load({}).calls).dev
    strict = auth_policy(load({"CALL_TOKEN_SECRET": SECRET}).calls)
    assert not strict.dev and not strict.guests
    assert auth_policy(load({"CALL_TOKEN_SECRET": SECRET,
                             "CALL_ALLOW_GUESTS": "true"}).calls).guests


def serve_env(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CALL_", "RECORDING"))}
    return {**base, **env}


@pytest.mark.parametrize("env,line", [
    ({"CALL_VIDEO_CODECS": "VP9"},
     "rtchub: configuration error: CALL_VIDEO_CODECS='VP9': expected a comma-separated list "
     "of video codecs from vp8, h264 ('VP9' is not one)"),
    ({"CALL_VIDEO_MIN_BITRATE": "3M"},
     "rtchub: configuration error: CALL_VIDEO_MIN_BITRATE=3000000 is above "
     "CALL_VIDEO_MAX_BITRATE=2500000 (bits/s): expected min <= max"),
    ({"CALL_AUDIO_CODECS": ""},
     "rtchub: configuration error: CALL_AUDIO_CODECS is empty while CALL_AUDIO is on: "
     "expected at least one codec (or CALL_AUDIO=false to refuse audio)"),
    ({"CALL_TOKEN_SECRET": "hunter2"},
     "rtchub: configuration error: CALL_TOKEN_SECRET: expected at least 32 bytes, got 7 "
     "(make one with: openssl rand -hex 32)"),
])
def test_serve_refuses_bad_call_settings_in_one_line(env: dict[str, str], line: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "rtchub", "serve"], env=serve_env(**env),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [line]
    assert "hunter2" not in proc.stderr   # the secret is never echoed


async def lines_until_ready(env: dict[str, str]) -> list[str]:
    """What ``rtchub serve`` logs up to its ready line; then it is stopped."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtchub", "serve", "--addr", "127.0.0.1:0", "--stream-addr", "",
        env=serve_env(**env), stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        while not lines or "rtchub ready" not in lines[-1]:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, "\n".join(lines)
            lines.append(line.decode())
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    return lines


async def test_serve_without_a_secret_says_it_is_a_dev_server_in_one_line() -> None:
    lines = await lines_until_ready({})
    dev = [x for x in lines if "dev mode" in x]
    assert len(dev) == 1 and "anyone joins call rooms as a guest" in dev[0]
    assert "level=warning" in dev[0]
    lines = await lines_until_ready({"CALL_TOKEN_SECRET": SECRET})
    assert not [x for x in lines if "dev mode" in x], lines
