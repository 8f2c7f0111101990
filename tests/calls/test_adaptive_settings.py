"""CALL_ADAPTIVE_UP_AFTER: its default, its bounds, and the server's policy built from it."""

from __future__ import annotations

import pytest

from rtchub.config import CallSettings, ConfigError, load
from rtchub.features.calls.routes import CALL_MEDIA
from tests.support import running


def test_the_up_step_wait_defaults_to_eight_seconds_and_takes_durations() -> None:
    assert load({}).calls.adaptive_up_after == 8.0
    assert load({"CALL_ADAPTIVE_UP_AFTER": "0s"}).calls.adaptive_up_after == 0.0
    assert load({"CALL_ADAPTIVE_UP_AFTER": "2500ms"}).calls.adaptive_up_after == 2.5
    assert load({"CALL_ADAPTIVE_UP_AFTER": "10m"}).calls.adaptive_up_after == 600.0


@pytest.mark.parametrize("value,message", [
    ("10m1s", "CALL_ADAPTIVE_UP_AFTER=601: expected a duration between 0s and 10m"),
    ("-1s", "CALL_ADAPTIVE_UP_AFTER='-1s': expected a duration"),
    ("soon", "CALL_ADAPTIVE_UP_AFTER='soon': expected a duration"),
])
def test_a_bad_up_step_wait_stops_start_up(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load({"CALL_ADAPTIVE_UP_AFTER": value})
    assert str(refused.value).startswith(message)


async def test_the_server_adapts_with_the_configured_wait() -> None:
    async with running(calls=CallSettings(adaptive_up_after=2.5)) as srv:
        adaptation = srv.server.app[CALL_MEDIA].adaptation
        assert adaptation is not None
        assert adaptation.driver.policy.up_after == 2.5
        assert adaptation.stale_after == srv.server.app[CALL_MEDIA].config.remb_stale_after
