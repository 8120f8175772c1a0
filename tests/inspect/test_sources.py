"""Every dataset format on real files built with `datasets` and `pyarrow`: each reads the same
rows as the JSONL of them, a file that is not what its name says is refused in one sentence,
an empty file says so, column mappings (given and guessed) find the messages."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.errors import InputError
from app.inspect.columns import ColumnMap, column_map, guess_columns
from app.inspect.pipeline import inspect_source, inspect_stream
from app.inspect.sources import open_path, sniff
from app.service.inspect import prepare
from app.settings import Settings
from tests.helpers.datasets import tokenized_row

ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"{2 * i}."},
        ]
    }
    for i in range(40)
] + [{"messages": [{"role": "user", "content": "No answer here."}]}]  # nothing trained: a finding


@pytest.fixture(scope="module")
def options():
    return prepare(Settings.from_env(), tokenizer="qwen3", dialect="chatml")


def figures(result):
    s = result["summary"]
    return (s["rows"], s["bad_rows"], s["tokens"], s["trained_tokens"], s["codes"])


def inspect_path(path, options):
    source, stream = open_path(path, options)
    try:
        return inspect_source(source, options).result(), source.kind
    finally:
        if stream is not None:
            stream.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, options):
    path = tmp_path_factory.mktemp("ref") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    result, kind = inspect_path(path, options)
    assert kind == "jsonl" and result["summary"]["codes"]["no-trained-tokens"] == 1
    return figures(result)


def test_parquet_read_by_row_group(tmp_path, options, reference):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=7)  # six row groups
    assert pq.ParquetFile(path).num_row_groups == 6
    result, kind = inspect_path(path, options)
    assert kind == "parquet" and figures(result) == reference
    assert [r["line"] for r in result["rows"]] == [41]  # the 41st record, 1-based


def test_datasets_parquet_and_json_exports(tmp_path, options, reference):
    ds = datasets.Dataset.from_list(ROWS)
    ds.to_parquet(str(tmp_path / "a.parquet"))
    ds.to_json(str(tmp_path / "a.jsonl"))
    for name, kind in (("a.parquet", "parquet"), ("a.jsonl", "jsonl")):
        result, found = inspect_path(tmp_path / name, options)
        assert found == kind and figures(result) == reference, name


def test_save_to_disk_folder(tmp_path, options, reference):
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"), num_shards=2)
    result, kind = inspect_path(tmp_path / "saved", options)
    assert kind == "arrow" and figures(result) == reference


def test_arrow_file_and_stream(tmp_path, options, reference):
    table = pa.Table.from_pylist(ROWS)
    with (
        pa.OSFile(str(tmp_path / "f.arrow"), "wb") as sink,
        pa.ipc.new_file(sink, table.schema) as writer,
    ):
        writer.write_table(table, max_chunksize=10)
    with (
        pa.OSFile(str(tmp_path / "s.arrow"), "wb") as sink,
        pa.ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table, max_chunksize=10)
    for name, kind in (("f.arrow", "arrow"), ("s.arrow", "arrow-stream")):
        result, found = inspect_path(tmp_path / name, options)
        assert found == kind and figures(result) == reference, name


def test_json_array_lines_are_physical_lines(tmp_path, options, reference):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(ROWS, indent=2))
    result, kind = inspect_path(path, options)
    assert kind == "json" and figures(result) == reference
    line = result["rows"][0]["line"]
    assert path.read_text().splitlines()[line - 1].strip() == "{"
    assert "No answer here." in "\n".join(path.read_text().splitlines()[line - 1 : line + 6])


def test_objects_written_over_several_lines_are_a_row_each(tmp_path, options, reference):
    """`jq` without -c, or one conversation saved with indentation: each object is a row (read
    as JSON Lines, every line of it was a bad row)."""
    path = tmp_path / "rows.json"
    path.write_text("\n".join(json.dumps(r, indent=2) for r in ROWS) + "\n")
    result, kind = inspect_path(path, options)
    assert kind == "json" and figures(result) == reference
    one = tmp_path / "one.json"
    one.write_text(json.dumps(ROWS[0], indent=4))
    result, _ = inspect_path(one, options)
    assert (result["summary"]["rows"], result["summary"]["bad_rows"]) == (1, 0)


@pytest.mark.parametrize(
    "head",
    [b'{"messages": []}\n{"messages": []}\n', b'{"messages": [\n{"messages": []}\n', b'{"a": 1}'],
)
def test_json_lines_stay_json_lines_even_with_a_broken_first_line(head):
    assert sniff(head, "rows.jsonl") == "jsonl"


def test_csv_with_a_json_messages_column(tmp_path, options, reference):
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "messages"])
        for i, row in enumerate(ROWS):
            writer.writerow([i, json.dumps(row["messages"])])
    result, kind = inspect_path(path, options)
    assert kind == "csv" and figures(result) == reference
    assert result["rows"][0]["line"] == 42  # header on line 1


def test_pre_tokenized_parquet(tmp_path, options):
    path = tmp_path / "tok.parquet"
    pq.write_table(pa.Table.from_pylist([tokenized_row("good"), tokenized_row("shifted")]), path)
    result, _ = inspect_path(path, options)
    assert result["summary"]["tokenized_rows"] == 2
    assert [r["line"] for r in result["rows"] if "labels-shifted" in str(r["lints"])] == [2]


@pytest.mark.parametrize(
    "head, name, message",
    [
        (b'{"messages": []}\n', "data.parquet", "data.parquet is not a Parquet file"),
        (b"PAR1\x00\x00", "data.arrow", "data.arrow is not a Arrow file"),
        (b"", "data.jsonl", "The file is empty"),
        (b"\n\n  \n", "data.jsonl", "only blank lines"),
    ],
)
def test_sniff_refuses_what_a_file_is_not(head, name, message):
    with pytest.raises(InputError, match=message):
        sniff(head, name)


def test_content_wins_over_the_name(tmp_path, options, reference):
    path = tmp_path / "really-parquet.jsonl"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    result, kind = inspect_path(path, options)
    assert kind == "parquet" and figures(result) == reference


def test_broken_parquet_is_one_sentence(tmp_path, options):
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="The Parquet file could not be read"):
        inspect_path(path, options)


def test_explicit_column_mapping(tmp_path):
    rows = [{"dialog": [{"speaker": "user", "text": "Hi"}, {"speaker": "assistant", "text": "Yo"}]}]
    path = tmp_path / "mapped.parquet"
    pq.write_table(pa.Table.from_pylist(rows * 3), path)
    mapping = column_map({"messages": "dialog", "role": "speaker", "content": "text"})
    options = prepare(Settings.from_env(), tokenizer="qwen3", dialect="chatml", columns=mapping)
    result, _ = inspect_path(path, options)
    assert result["summary"]["bad_rows"] == 0 and result["summary"]["trained_tokens"] == 6


def test_guessed_column_mapping_jsonl(options):
    row = {"id": 7, "turns": [{"who": "human", "says": "Hi"}, {"who": "gpt", "says": "Hello"}]}
    data = (json.dumps(row) + "\n").encode() * 2
    result = inspect_stream(io.BytesIO(data), options).result()
    assert result["summary"]["bad_rows"] == 0 and result["summary"]["trained_tokens"] > 0


def test_guess_stays_out_of_ambiguity():
    two = {"a": [{"role": "user", "content": "x"}], "b": [{"role": "user", "content": "y"}]}
    assert guess_columns(two, ColumnMap()).empty
    assert guess_columns({"messages": [{"role": "user", "content": "x"}]}, ColumnMap()).empty
    keys = {"turns": [{"who": "user", "a": "x", "b": "y"}]}  # two text keys: no content guess
    assert guess_columns(keys, ColumnMap()) == ColumnMap(messages="turns")


def test_unknown_mapping_name_is_named():
    with pytest.raises(InputError, match="Unknown column mapping sender"):
        column_map({"sender": "x"})


def test_a_mapping_the_first_row_lacks_names_the_columns(tmp_path):
    mapped = prepare(
        Settings.from_env(), tokenizer="qwen3", dialect="chatml", columns=ColumnMap(messages="x")
    )
    data = json.dumps(ROWS[0]).encode() + b"\n"
    with pytest.raises(InputError, match=r"no column 'x'.*columns are messages"):
        inspect_stream(io.BytesIO(data), mapped)
    later = json.dumps({"x": ROWS[0]["messages"]}).encode() + b"\n" + data  # row 2 lacks it
    result = inspect_stream(io.BytesIO(later), mapped).result()
    assert "no column 'x'" in result["summary"]["errors"][0]["message"]


def cli(*args, env=None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--tokenizer", "qwen3", "--dialect", "chatml"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_cli_missing_path_exits_2_without_traceback(tmp_path):
    done = cli("lint", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2 and "No such file or folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_hub_id_offline_exits_2_naming_it():
    # A closed local port stands in for an unreachable Hub: refused at once, no retries.
    done = cli("lint", "HuggingFaceH4/ultrachat_200k", env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert done.returncode == 2, done.stderr
    assert "not reachable" in done.stderr and "HuggingFaceH4/ultrachat_200k" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_reads_a_parquet_file(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    done = cli("lint", str(path))
    assert done.returncode == 1, done.stderr  # the no-trained-tokens row is an error
    assert "no-trained-tokens" in done.stdout and " 41" in done.stdout


def test_pad_is_eos_is_info_in_renders_token_rows_and_the_summary():
    opts = prepare(Settings.from_env(), tokenizer="smollm2", dialect="chatml")
    tokenizer = opts.tokenizer
    chat = ROWS[0]["messages"]
    ids = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False))["input_ids"]
    masked = [-100] * (len(ids) - 4) + ids[-4:-2] + [-100, -100]  # its <|im_end|> masked by id
    rows = [
        {"messages": chat},
        {"input_ids": ids, "labels": ids},
        {"input_ids": ids, "labels": masked},
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    result = inspect_stream(io.BytesIO(data), opts).result()
    found = [f for r in result["rows"] for f in r["lints"] if f["code"] == "pad-is-eos"]
    assert len(found) == 3 and {f["severity"] for f in found} == {"info"}
    assert result["summary"]["worst_severity"]["pad-is-eos"] == "info"


def test_a_json_array_nested_too_deeply_is_one_sentence(options):
    data = b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]"
    with pytest.raises(InputError, match=r"row 1 .* nested too deeply"):
        inspect_stream(io.BytesIO(data), options)


def test_a_missing_file_in_a_folder_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    from app.inspect.sources import is_hub_id

    monkeypatch.chdir(tmp_path)
    assert is_hub_id("HuggingFaceH4/ultrachat_200k")
    assert not is_hub_id("data/rows.jsonl") and not is_hub_id("out/train.parquet")
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "name").write_text("{}\n")
    assert not is_hub_id("org/name")  # it exists here: a path
