"""The fuzz targets in the suite: every seed and every past crash replayed, and one short
coverage-guided run over all targets (the long runs are by hand: docs/reliability.md).

A crash found by a long run is saved as tests/fuzz/regressions/<target>/<name> (the bytes
libFuzzer wrote) and replayed here from then on, with the fix beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import SEEDS, TARGETS

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def cases() -> list[tuple[str, bytes, str]]:
    found = [(name, seed, f"{name}-seed{i}") for name, seeds in SEEDS.items()
             for i, seed in enumerate(seeds)]
    for path in sorted((HERE / "regressions").glob("*/*")):
        found.append((path.parent.name, path.read_bytes(), f"{path.parent.name}-{path.name}"))
    return found


@pytest.mark.parametrize(("target", "data"), [c[:2] for c in cases()],
                         ids=[c[2] for c in cases()])
def test_seeds_and_past_crashes_pass(target: str, data: bytes) -> None:
    TARGETS[target](data)


def test_every_regression_names_a_target() -> None:
    for path in (HERE / "regressions").iterdir():
        if path.name.startswith("."):
            continue
        assert path.name in TARGETS, f"{path} is not a fuzz target's folder"


def test_a_short_coverage_guided_run_over_every_decoder(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    run = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", "all", str(tmp_path / "corpus"),
         "-runs=4000", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    log = run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "Done 4000 runs" in log, log[-3000:]
    assert not list(tmp_path.glob("crash-*"))
