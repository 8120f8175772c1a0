"""A job's results as downloads: its model folder as one zip streamed chunk by chunk, its metrics
as CSV.

The zip is written into a small buffer that is handed out and emptied after every chunk of every
file, so memory stays at about one chunk and nothing is copied to disk, whatever the model's size.
Example: b"".join(zip_chunks(folder, ["config.json", "model.safetensors"])) -> a valid zip

Design concession: entries are stored, not deflated: safetensors weights barely compress, and
deflating a 500 MB model would cost the server a minute of CPU per download.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK_BYTES = 1 << 20
CSV_COLUMNS = (
    "seq",
    "arm",
    "step",
    "loss",
    "eval_loss",
    "lr",
    "grad_norm",
    "tokens",
    "tokens_per_s",
)


class _Drain(io.RawIOBase):
    """A write-only, unseekable sink whose bytes are taken out with `take()`."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def zip_chunks(folder: Path, names: list[str], prefix: str = "") -> Iterator[bytes]:
    """The files `names` of `folder` as one zip (entries under `prefix`), chunk by chunk."""
    sink = _Drain()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in names:
            path = folder / name
            with path.open("rb") as src, archive.open(prefix + name, "w", force_zip64=True) as dst:
                while chunk := src.read(CHUNK_BYTES):
                    dst.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def metrics_csv(metrics: list[dict[str, Any]]) -> str:
    """One row per metric; a held-out point has eval_loss and an empty loss.

    Example: [{"seq": 1, "arm": "neftune", "step": 1, "loss": 2.5, ...}]
             -> "seq,arm,step,loss,eval_loss,...\\r\\n1,neftune,1,2.5,,...\\r\\n"
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for metric in metrics:
        writer.writerow({k: "" if metric.get(k) is None else metric[k] for k in CSV_COLUMNS})
    return out.getvalue()
