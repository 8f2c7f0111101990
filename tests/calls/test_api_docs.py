"""The Python examples of docs/calls.md run as written and print what the page says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.webrtc

DOC = Path(__file__).resolve().parents[2] / "docs" / "calls.md"
BLOCK = re.compile(r"```python\n# example: (\w+)\n(.*?)```\n\nIt prints:\n\n```\n(.*?)```",
                   re.DOTALL)


def examples() -> dict[str, tuple[str, str]]:
    return {m.group(1): (m.group(2), m.group(3)) for m in BLOCK.finditer(DOC.read_text())}


def test_the_page_has_its_examples() -> None:
    assert set(examples()) == {"sfu", "mesh"}


@pytest.mark.parametrize("name", ["sfu", "mesh"])
def test_example_runs_and_prints_what_the_page_says(name: str) -> None:
    code, printed = examples()[name]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == printed
