"""Several worker processes give the same summary, rows and export as one process."""

from __future__ import annotations

import io

import pytest

from app.inspect.parallel import PARALLEL_MIN_BYTES, worker_count
from app.service.inspect import inspect_stream, prepare
from app.settings import Settings
from tests.helpers.datasets import write_jsonl


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


@pytest.mark.parametrize(
    "total_bytes, wanted, cores, expected",
    [
        (100, 3, 16, 3),  # the inspect_workers setting wins when set
        (100, 0, 16, 1),  # small files stay in one process
        (PARALLEL_MIN_BYTES - 1, 0, 16, 1),
        (PARALLEL_MIN_BYTES, 0, 4, 4),  # big files: one per core...
        (PARALLEL_MIN_BYTES, 0, 16, 8),  # ...at most 8
        (PARALLEL_MIN_BYTES, 0, None, 1),  # core count unknown
    ],
)
def test_worker_count(monkeypatch, total_bytes, wanted, cores, expected):
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert worker_count(total_bytes, wanted) == expected
