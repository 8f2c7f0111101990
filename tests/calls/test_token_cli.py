"""``rtchub token``: run as a subprocess, its token verifies; bad input is one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from rtchub.errors import Unauthorized
from rtchub.features.calls.auth import verify_join_token

SECRET = "cli-secret-" + "x" * 32


def token(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CALL_TOKEN_SECRET"}
    return subprocess.run([sys.executable, "-m", "rtchub", "token", *args],
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_printed_token_verifies_with_its_grants_and_lifetime() -> None:
    before = time.time()
    proc = token("--room", "standup", "--identity", "alice", "--name", "Alice",
                 "--grant", "publish,record", "--ttl", "1h30m",
                 env={"CALL_TOKEN_SECRET": SECRET})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and proc.stderr == ""
    grants = verify_join_token(lines[0], "standup", SECRET)
    assert (grants.identity, grants.display_name) == ("alice", "Alice")
    assert grants.as_dict() == {"publish": True, "subscribe": False, "record": True,
                                "admin": False}
    # valid for 1h30m: still at 1h29m, refused past it (beyond the leeway)
    verify_join_token(lines[0], "standup", SECRET, lambda: before + 5390)
    with pytest.raises(Unauthorized, match="expired"):
        verify_join_token(lines[0], "standup", SECRET, lambda: time.time() + 5400 + 10)
    with pytest.raises(Unauthorized, match="not 'other'"):
        verify_join_token(lines[0], "other", SECRET)


def test_secret_flag_and_default_grants() -> None:
    proc = token("--room", "r", "--identity", "bob", "--secret", SECRET)
    assert proc.returncode == 0, proc.stderr
    grants = verify_join_token(proc.stdout.strip(), "r", SECRET)
    assert grants.as_dict() == {"publish": True, "subscribe": True, "record": False,
                                "admin": False}
    with pytest.raises(Unauthorized, match="signature"):
        verify_join_token(proc.stdout.strip(), "r", SECRET + "!")


@pytest.mark.parametrize("args,line", [
    ((), "rtchub token: no secret: pass --secret or set CALL_TOKEN_SECRET (the server's)"),
    (("--secret", "short"), "rtchub token: expected a token secret of at least 32 bytes, "
     "got 5"),
    (("--secret", SECRET, "--ttl", "soon"), "rtchub token: --ttl='soon': expected a duration "
     "such as 20s, 500ms, 10m or a number of seconds"),
    (("--secret", SECRET, "--ttl", "0"), "rtchub token: expected a token lifetime greater "
     "than zero, got 0.0"),
    (("--secret", SECRET, "--grant", "publish,owner"), "rtchub token: "
     "--grant='publish,owner': unknown grant 'owner': expected some of publish, subscribe, "
     "record, admin"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], line: str) -> None:
    proc = token("--room", "r", "--identity", "a", *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [line]
