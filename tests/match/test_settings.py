"""The MATCH_* settings: parsed, validated, named in errors."""

from __future__ import annotations

import pytest

from rtchub.config import ConfigError, load
from rtchub.config.settings import parse_rate


def test_defaults() -> None:
    limits = load(environ={}).limits
    assert limits.match_request_rate == (1, 5.0)
    assert limits.match_message_rate == (10, 60.0)
    assert (limits.match_max_name, limits.match_max_message, limits.match_max_image,
            limits.match_max_queue) == (64, 1000, 32 * 1024, 10_000)


def test_environment_and_flags() -> None:
    limits = load(environ={"MATCH_REQUEST_RATE": "2/10s", "MATCH_MAX_IMAGE": "8KiB"},
                  flags={"match_message_rate": "30/1h", "match_max_queue": "5"}).limits
    assert limits.match_request_rate == (2, 10.0)
    assert limits.match_message_rate == (30, 3600.0)
    assert limits.match_max_image == 8192
    assert limits.match_max_queue == 5


@pytest.mark.parametrize(("text", "value"), [("0", (0, 60.0)), ("1/5s", (1, 5.0)),
                                             ("10/1m", (10, 60.0)), ("3/500ms", (3, 0.5))])
def test_parse_rate(text: str, value: tuple[int, float]) -> None:
    assert parse_rate(text) == value


@pytest.mark.parametrize("text", ["", "5", "x/5s", "-1/5s", "1/0s", "1/soon"])
def test_bad_rates_name_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match=r"MATCH_REQUEST_RATE=.*expected a rate such as"):
        load(environ={"MATCH_REQUEST_RATE": text})


def test_bad_sizes_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="MATCH_MAX_IMAGE='10'"):
        load(environ={"MATCH_MAX_IMAGE": "10"})
    with pytest.raises(ConfigError, match="MATCH_MAX_NAME"):
        load(environ={"MATCH_MAX_NAME": "0"})
