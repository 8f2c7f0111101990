"""A full disk and a read-only file system, for real: a tmpfs in a private mount namespace.

Each case runs a recording in a child process under ``unshare -m`` (its mounts
never reach the host) whose output directory is a 128 KiB tmpfs, or a read-only
one. The disk-full recording must end ``failed`` with the reason, not crash; the
read-only one must refuse to start with a clear error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def can_mount() -> None:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "true"], capture_output=True,
                                         check=False).returncode != 0:
        pytest.skip("needs unshare -m (root, or user namespaces) to mount a small tmpfs")


def run_child(tmp_path: Path, mount_options: str) -> dict[str, object]:
    target = tmp_path / "disk"
    target.mkdir()
    script = (f'mount -t tmpfs -o {mount_options} rtchub-test "$1" && exec "$2" -m '
              f'tests.media.diskchild "$1/recordings"')
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", str(target), sys.executable], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_full_disk_stops_the_recording_with_its_reason(tmp_path: Path,
                                                          can_mount: None) -> None:
    result = run_child(tmp_path, "size=128k")
    assert result["state"] == "failed"
    assert "No space left on device" in str(result["reason"])
    assert isinstance(result["frames"], int) and result["frames"] > 10
    assert isinstance(result["readable_frames"], int) and result["readable_frames"] > 0
    # the manifest was replaced atomically or not at all: it still parses
    assert result["manifest_state"] in ("recording", "failed")
    assert result["listeners"] == 0  # the recording let go of its sources


def test_a_read_only_output_is_refused_at_the_start(tmp_path: Path, can_mount: None) -> None:
    result = run_child(tmp_path, "ro,size=128k")
    assert result["state"] == "failed"
    assert "Read-only file system" in str(result["start_error"])
    assert result["reason"] == result["start_error"]
