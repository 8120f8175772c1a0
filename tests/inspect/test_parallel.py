"""Several worker processes give the same summary, rows and export as one process."""

from __future__ import annotations

import io

import pytest

from app.inspect.parallel import PARALLEL_MIN_BYTES, worker_count
from app.service.inspect import inspect_stream, prepare
from app.settings import Settings
from tests.inspect.conftest import write_jsonl


@pytest.mark.slow
def test_workers_agree_with_one_process(mixed_rows, tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, mixed_rows * 60)  # 660 rows: three chunks
    options = prepare(Settings.from_env(), tokenizer="qwen3", dialect="chatml")
    results = []
    for workers in (1, 2):
        out = io.StringIO()
        with open(path, "rb") as fh:
            inspector = inspect_stream(fh, options, export=out, workers=workers)
        results.append((inspector.result(), out.getvalue()))
    (one, one_out), (two, two_out) = results
    assert one == two
    assert one_out == two_out
    assert one["summary"]["rows"] == 660 and one["summary"]["bad_rows"] == 240


def test_worker_count():
    assert worker_count(100, 3) == 3
    assert worker_count(100, 0) == 1
    assert worker_count(PARALLEL_MIN_BYTES, 0) >= 1
