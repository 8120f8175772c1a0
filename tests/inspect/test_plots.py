"""Dataset plots against the rows themselves (the exported ids and labels) and packing against
TRL's own best-fit-decreasing packer; per-part trained tokens, tool-call turns and dataset-wide
argument mixing in the summary; the plots in the page (SVG) and in `inspect --json`."""

from __future__ import annotations

import copy
import io
import json

import datasets
import pytest

from app.inspect.pipeline import inspect_stream
from app.inspect.plots import bars, packing
from app.service.inspect import prepare
from app.settings import Settings
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS


def conversation(i):
    return {
        "messages": [
            {"role": "user", "content": "Tell me about the number " + str(i) + "." * (i % 7)},
            {"role": "assistant", "content": ("It is a number. " * (1 + i % 13)).strip()},
        ]
    }


ROWS = [conversation(i) for i in range(60)] + [{"messages": [{"role": "user", "content": "Hi"}]}]


@pytest.fixture(scope="module")
def inspected():
    opts = prepare(Settings.from_env(), tokenizer="qwen3", dialect="chatml")
    data = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    out = io.StringIO()
    report = inspect_stream(io.BytesIO(data), opts, export=out)
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    return report, exported


@pytest.mark.parametrize("limit", [30, 45, 60])
def test_truncation_matches_the_rows(inspected, limit):
    report, exported = inspected
    cut = report.result(max_length=limit)["plots"]["truncation"]
    lengths = [len(r["input_ids"]) for r in exported]
    trained = [[i for i, x in enumerate(r["labels"]) if x != -100] for r in exported]
    assert cut["rows_cut"] == sum(n > limit for n in lengths) > 0
    assert cut["tokens_lost"] == sum(max(0, n - limit) for n in lengths)
    assert cut["rows_losing_answer_end"] == sum(bool(t) and t[-1] >= limit for t in trained)
    drops = report.result(max_length=limit)["plots"]["trainer"]
    assert drops["nothing_trained"] == 1
    assert drops["nothing_trained_after_cut"] == sum(bool(t) and t[0] >= limit for t in trained)


def test_length_histograms_count_every_row(inspected):
    report, exported = inspected
    lengths = report.result()["plots"]["lengths"]
    for bins, values in (
        (lengths["total"], [len(r["input_ids"]) for r in exported]),
        (lengths["trained"], [sum(x != -100 for x in r["labels"]) for r in exported]),
    ):
        assert sum(b["rows"] for b in bins) == len(exported)
        for b in bins:
            assert b["rows"] == sum(b["from"] <= v < b["to"] for v in values)
    assert {"user", "assistant"} <= set(lengths["roles"])
    assert set(lengths["parts"]) == {"content", "markup"}  # the answer and its <|im_end|>


@pytest.mark.parametrize("row_length", [64, 100, 256])
def test_packing_equals_trls_best_fit_decreasing(inspected, row_length):
    from trl.data_utils import pack_dataset

    report, exported = inspected
    mine = packing(report.summary.lengths, row_length)
    dataset = datasets.Dataset.from_list([{"input_ids": r["input_ids"]} for r in exported])
    theirs = pack_dataset(dataset, seq_length=row_length, strategy="bfd")
    assert mine["packs"] == len(theirs)
    kept = sum(len(r["input_ids"]) for r in theirs)
    assert mine["padding_share"] == pytest.approx(1 - kept / (len(theirs) * row_length))


def test_parts_tool_call_turns_and_dataset_wide_argument_mixing():
    as_text = copy.deepcopy(TOOL_CALL_TURNS)
    as_text[1]["tool_calls"][0]["function"]["arguments"] = json.dumps({"city": "Paris"})
    rows = [
        {"messages": TOOL_CALL_TURNS, "tools": WEATHER_TOOLS},
        {"messages": as_text, "tools": WEATHER_TOOLS},
    ]
    opts = prepare(Settings.from_env(), tokenizer="qwen3", dialect="tokenizer")
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    summary = inspect_stream(io.BytesIO(data), opts).result()["summary"]
    assert {"tool_call", "reasoning", "content"} <= set(summary["trained_tokens_by_part"])
    assert summary["tool_call_turns"] == 2 and summary["tool_call_eot_trained"] == 2
    (finding,) = summary["dataset_findings"]
    assert finding["code"] == "tool-arguments-mixed" and finding["severity"] == "info"
    assert "line 2" in finding["message"] and "line 1" in finding["message"]
    alone = inspect_stream(io.BytesIO(data.splitlines()[0] + b"\n"), opts).result()
    assert alone["summary"]["dataset_findings"] == []


def test_bars_scale_to_the_box():
    drawn = bars([{"from": 0, "to": 1, "rows": 2}, {"from": 1, "to": 2, "rows": 1}], 100, 10)
    assert [(b["x"], b["h"]) for b in drawn] == [(0.0, 10.0), (50.0, 5.0)]
    assert drawn[0]["label"] == "0 tokens: 2 rows"


def test_cli_json_carries_the_plots(tmp_path, capsys):
    from app.cli import main

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    code = main(
        [
            "inspect",
            str(path),
            "--tokenizer",
            "qwen3",
            "--dialect",
            "chatml",
            "--json",
            "--plot-max-length",
            "40",
            "--pack-length",
            "128",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 1  # the row with nothing trained
    assert result["plots"]["truncation"]["max_length"] == 40
    assert result["plots"]["packing"]["row_length"] == 128
