"""The inspection as a pure batch function, for clusters: columns in, input_ids, labels and
findings out, usable as `datasets.Dataset.map(fn, batched=True, num_proc=N)`, Ray Data's
`map_batches` or Spark's `mapInPandas`, so a dataset of billions of tokens gets the same checks
as `maskscope inspect`, row by row.

Example:
    check = BatchCheck(tokenizer="smollm2", dialect="tokenizer")
    ds.map(check, batched=True, with_indices=True, num_proc=8, features=check.features(ds.features))
    -> columns input_ids, labels, attention_mask, kind, error, findings (code, severity,
       message, tokens), alongside the dataset's own

Ray Data: `ds.map_batches(BatchCheck(...), batch_format="pandas")` (a pandas frame in, one
out). Spark: `df.mapInPandas(lambda frames: map(check.frame, frames), schema)`.

Design concession: the callable holds only plain data (the spec fields and the column mapping)
and loads the tokenizer once per process on its first call, so it pickles to worker processes;
the deep checks (those that re-render) run on the first conversation rows of a batch whose
indices are below the inspect_probe_rows setting, which is `maskscope inspect`'s choice when the
dataset starts with conversation rows, and need `with_indices=True` (without indices no row is
deep-checked). Preference rows give empty input_ids and labels (their findings still come).
"""

from __future__ import annotations

import json
from typing import Any

from app.chat.spec import RenderSpec
from app.inspect.columns import column_map
from app.inspect.evaluator import RowEvaluator
from app.inspect.options import load_options
from app.inspect.reader import RawRow
from app.settings import Settings

OUTPUT_COLUMNS = ("input_ids", "labels", "attention_mask", "kind", "error", "findings")


class BatchCheck:
    """Callable over a batch of rows (a dict of columns); see the module docstring."""

    def __init__(self, columns: dict[str, str] | None = None, **spec: Any) -> None:
        self.spec = spec
        self.columns = dict(columns or {})
        self._evaluator: RowEvaluator | None = None
        self._probe_rows = 0
        self.mapping = column_map(self.columns)

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "columns": self.columns}  # the tokenizer is loaded again

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["columns"], **state["spec"])  # type: ignore[misc]

    def evaluator(self) -> RowEvaluator:
        if self._evaluator is None:
            settings = Settings.from_env()
            options = load_options(RenderSpec(**self.spec), settings, column_map(self.columns))
            self._evaluator = RowEvaluator(options)
            self._probe_rows = options.probe_rows
        return self._evaluator

    def __call__(
        self, batch: dict[str, list[Any]], indices: list[int] | None = None
    ) -> dict[str, list[Any]]:
        """The batch's rows checked: the output columns, one value per row."""
        evaluator = self.evaluator()
        names = list(batch)
        size = len(batch[names[0]]) if names else 0
        index = list(range(size)) if indices is None else list(indices)
        out: dict[str, list[Any]] = {name: [] for name in OUTPUT_COLUMNS}
        raws = [
            RawRow(i + 1, i, self.mapping.apply({name: batch[name][k] for name in names}))
            for k, i in enumerate(index)
        ]
        deep = 0 if indices is None else sum(1 for i in index if i < self._probe_rows)
        evaluator.reset_probes(deep)
        for outcome in evaluator.evaluate_many(raws, True):  # one tokenizer call per batch
            processed = json.loads(outcome.export_line) if outcome.export_line else {}
            out["input_ids"].append(processed.get("input_ids", []))
            out["labels"].append(processed.get("labels", []))
            out["attention_mask"].append(processed.get("attention_mask", []))
            out["kind"].append(outcome.kind)
            out["error"].append(outcome.error)
            out["findings"].append([f.to_json() for f in outcome.findings])
        return out

    @staticmethod
    def features(given: Any = None) -> Any:
        """`datasets.Features` of the dataset's own columns (`given`) and the output ones, for
        `map(features=...)`: a batch with no finding or no error would otherwise fix those
        columns' type as null for every later batch."""
        import datasets  # only callers that map a datasets.Dataset need it

        ids = datasets.Sequence(datasets.Value("int64"))
        text = datasets.Value("string")
        out = datasets.Features(dict(given or {}))
        out.update(
            {
                "input_ids": ids,
                "labels": ids,
                "attention_mask": ids,
                "kind": text,
                "error": text,
                "findings": [{"code": text, "severity": text, "message": text, "tokens": ids}],
            }
        )
        return out

    def frame(self, frame: Any) -> Any:
        """A pandas DataFrame in, one with the output columns added out (Ray Data's
        `batch_format="pandas"`, Spark's `mapInPandas`)."""
        checked = self({name: list(frame[name]) for name in frame.columns})
        result = frame.copy()
        for name, values in checked.items():
            result[name] = values
        return result
