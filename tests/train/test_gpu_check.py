"""benchmarks/gpu_check.py's smoke mode on the CPU: every part runs and the table comes out.

The GPU figures themselves need a CUDA machine; this keeps the script working until one is lent
(about 40 s of CPU: a random 2-layer model, three steps per arm, a short scoring).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.train.runner import ROOT
from tests.helpers.assets import require_asset
from tests.train.tiny import SMOLLM2

SCRIPT = str(ROOT / "benchmarks" / "gpu_check.py")


@pytest.fixture(scope="module")
def smoke() -> subprocess.CompletedProcess[str]:
    require_asset(SMOLLM2 / "tokenizer.json", "smollm2")
    return subprocess.run(
        [sys.executable, SCRIPT, "--device", "cpu", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_quick_cpu_run_prints_one_table_with_every_part(smoke):
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
    lines = smoke.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("gpu_check on cpu")) :]
    rows = [line for line in table if line.startswith("(")]
    assert [row[:3] for row in rows] == ["(a)", "(b)", "(c)", "(c)", "(c)", "(d)"]
    assert rows[0].startswith("(a) tests: tests/train/test_summary.py") and " passed" in rows[0]
    assert "worst 0.00%" in rows[1] and "  ok  " in rows[1]
    assert "HF Trainer padded, neftune_noise_alpha=5" in rows[2] and "tokens/s" in rows[2]
    assert "ours packed, NEFTune" in rows[4]
    assert rows[5].startswith(("(d) /api/score, ", "(d) /api/score  ")), rows[5]
    assert "FAIL" not in rows[5]
    assert "MFU" not in smoke.stdout, "MFU is a CUDA figure"


def test_without_cuda_the_default_run_says_how_to_smoke_test():
    import torch  # heavy: only this test asks whether a GPU is here

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the default run is the real check")
    result = subprocess.run(
        [sys.executable, SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert "--device cpu --quick" in result.stdout
