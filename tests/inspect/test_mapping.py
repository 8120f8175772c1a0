"""The batch function through `datasets.Dataset.map(batched=True, num_proc=2)` gives, row by
row, the ids, labels and findings `maskscope inspect` gives for the same file."""

from __future__ import annotations

import json
import pickle

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from app.inspect.mapping import BatchCheck
from tests.helpers.datasets import CHAT, tokenized_row

ROWS = [
    {"messages": CHAT, "input_ids": None},
    {"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}]},
    {"messages": CHAT[:1]},  # nothing trained: an error finding
] * 7


def test_datasets_map_equals_maskscope_inspect(tmp_path, capsys):
    from app.cli import main

    rows = [{"messages": r["messages"]} for r in ROWS] + [tokenized_row("shifted")] * 3
    path = tmp_path / "rows.parquet"
    table = pa.Table.from_pylist([{"messages": r.get("messages"), **_ids(r)} for r in rows])
    pq.write_table(table, path)
    out = tmp_path / "processed.jsonl"
    main(
        [
            "inspect",
            str(path),
            "--tokenizer",
            "qwen3",
            "--dialect",
            "chatml",
            "--json",
            "--rows",
            "1000",
            "--export-processed",
            str(out),
        ]
    )
    cli = json.loads(capsys.readouterr().out)
    exported = {r["row"]: r for r in map(json.loads, out.read_text().splitlines())}
    findings = {r["line"] - 1: [f["code"] for f in r["lints"]] for r in cli["rows"]}

    dataset = datasets.Dataset.from_parquet(str(path))
    check = BatchCheck(tokenizer="qwen3", dialect="chatml")
    mapped = dataset.map(
        check,
        batched=True,
        batch_size=5,
        with_indices=True,
        num_proc=2,
        features=check.features(dataset.features),
    )
    assert len(mapped) == len(rows) == len(exported)
    for i, row in enumerate(mapped):
        assert row["input_ids"] == exported[i]["input_ids"], i
        assert row["labels"] == exported[i]["labels"], i
        assert [f["code"] for f in row["findings"]] == findings.get(i, []), i
    assert {row["kind"] for row in mapped} == {"conversation", "tokenized"}
    assert any("labels-shifted" in str(row["findings"]) for row in mapped)


def _ids(row):
    return {
        "input_ids": row.get("input_ids"),
        "labels": row.get("labels"),
        "attention_mask": row.get("attention_mask"),
    }


def test_the_batch_function_pickles_without_its_tokenizer():
    check = BatchCheck(tokenizer="qwen3", dialect="chatml", columns={"messages": "dialog"})
    check({"dialog": [CHAT]})  # loads the tokenizer
    again = pickle.loads(pickle.dumps(check))
    assert again._evaluator is None
    out = again({"dialog": [CHAT]})
    assert out["kind"] == ["conversation"] and out["error"] == [None] and out["input_ids"][0]


def test_pandas_frames_as_ray_and_spark_hand_them():
    import pandas as pd

    frame = pd.DataFrame({"messages": [CHAT, CHAT[:1]]})
    checked = BatchCheck(tokenizer="qwen3", dialect="chatml").frame(frame)
    assert list(checked["kind"]) == ["conversation", "conversation"]
    assert [f[0]["code"] for f in checked["findings"][1:]] == ["no-trained-tokens"]
    assert "messages" in checked.columns
