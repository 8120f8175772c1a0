"""A short, bounded run of the atheris target for the template worker (longer: see the target)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

TARGET = Path(__file__).with_name("fuzz_template_worker.py")


def rss_limit_mb() -> int:
    """libFuzzer's 2 GB RSS bound above what the child starts with: Linux carries a process's peak
    RSS across fork and exec, so a child of a test process that has loaded a model would start
    "out of memory"."""
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return inherited_mb + 2048


def test_short_fuzz_run_finds_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(TARGET),
            "-runs=1500",
            "-timeout=10",
            "-max_len=2048",
            "-seed=1",
            f"-rss_limit_mb={rss_limit_mb()}",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Done 1500 runs" in output
    assert len(list(corpus.iterdir())) > 5  # seeded and grown: the target really ran
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
