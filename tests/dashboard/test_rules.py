"""The dashboard's pure rules: the token, the session cookie, the quality window."""

from __future__ import annotations

from rtchub.features.dashboard.rules import (
    HISTORY_SECONDS,
    MAX_SAMPLES,
    bearer_ok,
    cookie_ok,
    recent_samples,
    session_value,
)

TOKEN = "0123456789abcdef0123"


def test_bearer() -> None:
    assert bearer_ok(f"Bearer {TOKEN}", TOKEN)
    assert bearer_ok(f"bearer  {TOKEN} ", TOKEN)
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer ",
                   f"Bearer {TOKEN[:-1]}"):
        assert not bearer_ok(header, TOKEN), header


def test_the_cookie_is_not_the_token_and_follows_it() -> None:
    value = session_value(TOKEN)
    assert TOKEN not in value and cookie_ok(value, TOKEN)
    assert not cookie_ok(value, TOKEN + "x")   # a new token ends every session
    assert not cookie_ok(TOKEN, TOKEN) and not cookie_ok(None, TOKEN)


def test_recent_samples_keep_the_window_and_a_bound() -> None:
    now = 10_000.0
    old = {"at": now - HISTORY_SECONDS - 1, "score": 1}
    fresh = [{"at": now - i, "score": 50} for i in range(MAX_SAMPLES + 10, 0, -1)]
    undated = {"score": 70}
    out = recent_samples({"p": [old, *fresh, undated]}, now)
    assert out["p"][-1] == undated and old not in out["p"]
    assert len(out["p"]) == MAX_SAMPLES
    assert recent_samples({}, now) == {}


def test_the_quality_monitors_names_are_understood() -> None:
    now = 5_000.0
    sample = {"measured_at": now - 10, "score": 81, "packet_loss": 2.5, "latency": 40.0,
              "bitrate_kbps": 900.0, "jitter": 4.0, "warnings": ["high_loss"]}
    (out,) = recent_samples({"ann": [sample, {"measured_at": now - 999, "score": 1}]},
                            now)["ann"]
    assert out["at"] == now - 10 and out["loss"] == 2.5 and out["rtt"] == 40.0
    assert out["bitrate"] == 900.0 and out["score"] == 81 and out["jitter"] == 4.0
