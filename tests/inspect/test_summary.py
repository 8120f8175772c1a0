"""The dataset summary is the same in every process: equal counts keep the rows' finding order."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from app.chat.tokens import Finding
from app.inspect.summary import RowStats, Summary

summary = Summary()
codes = ["pad-is-eos", "boundary-merge", "special-token-in-content", "double-bos", "eot-untrained"]
stats = RowStats(tokens=10, trained=2, eot_closing=1, eot_trained=1, kind="conversation")
summary.add_row(stats, [Finding(c, "info", "m", []) for c in codes])
print(json.dumps(list(summary.to_json()["codes"])))
"""


def _codes_with_hash_seed(seed: int) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_code_counts_do_not_depend_on_the_string_hash_seed():
    orders = {tuple(_codes_with_hash_seed(seed)) for seed in range(6)}
    assert orders == {
        ("pad-is-eos", "boundary-merge", "special-token-in-content", "double-bos", "eot-untrained")
    }
