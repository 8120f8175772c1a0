"""A job's downloads: the model folder as one streamed zip, the metrics as CSV."""

from __future__ import annotations

import csv
import io
import os
import zipfile

from app.train.export import CHUNK_BYTES, metrics_csv, zip_chunks


def test_the_zip_streams_in_chunks_and_unzips_to_the_same_files(tmp_path):
    big = os.urandom(3 * CHUNK_BYTES + 123)
    (tmp_path / "model.safetensors").write_bytes(big)
    (tmp_path / "config.json").write_text('{"a": 1}')
    chunks = list(zip_chunks(tmp_path, ["config.json", "model.safetensors"], "job1/"))
    assert max(len(c) for c in chunks) <= CHUNK_BYTES + 4096, "memory stays at about one chunk"
    assert len(chunks) > 4
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["job1/config.json", "job1/model.safetensors"]
        assert archive.read("job1/model.safetensors") == big
        assert archive.read("job1/config.json") == b'{"a": 1}'


def test_metrics_csv_has_one_row_per_metric_and_empty_cells_for_what_is_missing():
    metrics = [
        {"seq": 1, "arm": "neftune", "step": 0, "loss": None, "eval_loss": 2.5},
        {"seq": 2, "arm": "neftune", "step": 1, "loss": 2.7, "lr": 1e-4, "tokens_per_s": 90.5},
    ]
    rows = list(csv.DictReader(io.StringIO(metrics_csv(metrics))))
    assert [r["seq"] for r in rows] == ["1", "2"]
    assert (rows[0]["loss"], rows[0]["eval_loss"]) == ("", "2.5")
    assert (rows[1]["loss"], rows[1]["eval_loss"], rows[1]["lr"]) == ("2.7", "", "0.0001")
