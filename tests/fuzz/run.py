"""Run one fuzz target under atheris (coverage-guided, libFuzzer underneath).

    .venv/bin/python -m tests.fuzz.run TARGET [CORPUS_DIR ...] [libFuzzer flags]

TARGET is one of tests/fuzz/targets.py's TARGETS or ``all``. The seeds of the target are
written into the first corpus directory (a temporary one when none is given) before the
run. rtchub and the parsers it calls (aiortc's SDP/RTP/RTCP, python-socketio's packets)
are instrumented for coverage. libFuzzer prints executions (``#N``) and coverage
(``cov:``, ``ft:``); a crash writes ``crash-<sha1>`` (``-artifact_prefix=``), which goes
to tests/fuzz/regressions/<target>/ as a regression test. Long runs:
``-max_total_time=3600``; in the suite: ``-runs=...`` (tests/fuzz/test_fuzz.py).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["rtchub", "aiortc.sdp", "aiortc.rtp",
                                         "socketio.packet", "tests.fuzz.targets"]):
    from tests.fuzz import targets


def main(argv: list[str]) -> None:
    """Parse ``argv``, seed the corpus, fuzz until libFuzzer stops."""
    if len(argv) < 2 or (argv[1] not in targets.TARGETS and argv[1] != "all"):
        sys.exit(f"usage: python -m tests.fuzz.run {{{'|'.join([*targets.TARGETS, 'all'])}}}"
                 " [CORPUS_DIR ...] [libFuzzer flags]")
    name, rest = argv[1], argv[2:]
    dirs = [a for a in rest if not a.startswith("-")]
    if not dirs:
        dirs = [tempfile.mkdtemp(prefix=f"rtchub-fuzz-{name}-")]
        rest = [*rest, dirs[0]]
    corpus = Path(dirs[0])
    corpus.mkdir(parents=True, exist_ok=True)
    names = list(targets.TARGETS) if name == "all" else [name]
    for i, target in enumerate(targets.TARGETS):
        if target not in names:
            continue
        for seed in targets.SEEDS[target]:
            data = bytes([i]) + seed if name == "all" else seed
            (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    fn = targets.ALL if name == "all" else targets.TARGETS[name]
    atheris.Setup([argv[0], *rest], fn)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
