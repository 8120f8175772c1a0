"""Inspecting a mixed file: good rows in three formats, malformed rows, pre-tokenized rows."""

from __future__ import annotations

import io
import json

import pytest

from app.chat.messages import parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from app.inspect.evaluator import RowEvaluator
from app.inspect.options import options_for
from app.inspect.pipeline import BATCH_ROWS, run_threaded
from app.inspect.reader import JsonlReader
from app.inspect.report import Report
from app.service.inspect import inspect_stream, prepare
from app.settings import Settings
from tests.helpers.datasets import CHAT, tokenized_row, write_jsonl
from tests.helpers.tokenizers import bundled


def run(rows, tmp_path, dialect="chatml", **kw):
    path = tmp_path / "data.jsonl"
    write_jsonl(path, rows)
    options = prepare(Settings.from_env(), tokenizer="qwen3", dialect=dialect, **kw)
    export = io.StringIO()
    with open(path, "rb") as fh:
        inspector = inspect_stream(fh, options, export=export)
    return inspector.result(), export.getvalue().splitlines()


def rows_by_line(result):
    return {r["line"]: r for r in result["rows"]}


def test_mixed_file_counts_and_line_numbers(mixed_rows, tmp_path):
    result, exported = run(mixed_rows, tmp_path)
    summary, rows = result["summary"], rows_by_line(result)
    assert summary["rows"] == 11
    assert summary["bad_rows"] == 4 and {e["line"] for e in summary["errors"]} == {4, 5, 8, 11}
    assert summary["conversation_rows"] == 4 and summary["tokenized_rows"] == 3
    assert "not valid JSON" in rows[4]["error"] and "wizard" in rows[5]["error"]
    assert "labels has 2 entries" in rows[8]["error"]
    assert [f["code"] for f in rows[10]["lints"]] == ["no-trained-tokens"]
    assert summary["zero_trained_rows"] == 1
    assert len(exported) == summary["rows"] - summary["bad_rows"]
    # Lines are written without the json encoder: they must be what it would write.
    assert all(line == json.dumps(json.loads(line)) for line in exported)


def test_good_rows_have_no_findings(mixed_rows, tmp_path):
    result, _ = run(mixed_rows, tmp_path)
    listed = rows_by_line(result)
    for line in (1, 2, 3, 6):
        assert line not in listed, listed.get(line)


def test_tokenized_row_findings(mixed_rows, tmp_path):
    result, _ = run(mixed_rows, tmp_path)
    rows = rows_by_line(result)
    assert "labels-shifted" in {f["code"] for f in rows[7]["lints"]}
    # Line 9 trains the user turn; its messages attribute the labels back to roles.
    prompt = [f for f in rows[9]["lints"] if f["code"] == "prompt-trained"]
    assert prompt and prompt[0]["severity"] == "warning"


def test_tokenized_row_without_messages_gets_roles_from_markers(tmp_path):
    result, _ = run([tokenized_row("user")], tmp_path)
    assert "prompt-trained" in {f["code"] for f in result["rows"][0]["lints"]}


@pytest.mark.parametrize(
    "mode, code",
    [
        ("glue", "trailing-glue-trained"),
        ("no_eot", "eot-untrained"),
        ("copy", "labels-equal-inputs"),
    ],
)
def test_tokenized_rows_each_mistake(tmp_path, mode, code):
    result, _ = run([tokenized_row(mode), tokenized_row("good")], tmp_path)
    rows = rows_by_line(result)
    assert code in {f["code"] for f in rows[1]["lints"]}
    assert 2 not in rows


def test_summary_rates_from_an_independent_count(tmp_path):
    result, exported = run([{"messages": CHAT}] * 3 + [tokenized_row("no_eot")], tmp_path)
    summary = result["summary"]
    labels = [json.loads(line)["labels"] for line in exported]
    trained = sum(1 for row in labels for v in row if v != -100)
    tokens = sum(len(row) for row in labels)
    assert (summary["trained_tokens"], summary["tokens"]) == (trained, tokens)
    assert summary["eot_closing_trained_turns"] == 4 and summary["eot_trained"] == 3
    assert summary["eot_trained_rate"] == pytest.approx(0.75)
    assert sum(b["rows"] for b in summary["trained_fraction_histogram"]) == 4
    assert summary["codes"] == {"eot-untrained": 1}


def test_export_rows_equal_the_engine_rendering(tmp_path):
    _, exported = run([{"messages": CHAT}], tmp_path)
    spec = RenderSpec(tokenizer="qwen3", dialect="chatml")
    want = render(parse_messages(CHAT), get_dialect("chatml"), bundled("qwen3"), spec)
    row = json.loads(exported[0])
    assert row == {
        "input_ids": want.input_ids,
        "labels": want.labels,
        "attention_mask": want.attention_mask,
        "line": 1,
        "row": 0,
    }


def test_probe_rows_limit_deep_checks(tmp_path):
    chat = [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nAdd.\n</think>\n\n4."},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "6."},
    ]
    result, _ = run([{"messages": chat}] * 5, tmp_path, dialect="tokenizer")
    assert result["summary"]["codes"]["template-not-prefix-stable"] == Settings().inspect_probe_rows


def test_row_reports_are_capped_but_counted(tmp_path):
    settings = Settings.from_env(inspect_max_row_reports=2)
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"messages": CHAT[:1]}] * 5)
    spec = RenderSpec(dialect="chatml")
    options = options_for(settings, tokenizer=bundled("qwen3"), spec=spec)
    with open(path, "rb") as fh:
        result = inspect_stream(fh, options).result()
    assert len(result["rows"]) == 2
    assert result["summary"]["rows_omitted"] == 3
    assert result["summary"]["codes"]["no-trained-tokens"] == 5


def test_rows_needing_a_fix_are_listed_before_info_only_rows(tmp_path):
    """SmolLM2's pad token is its end-of-turn token: every row carries an info finding. With
    the list capped, a later row with an error must still be listed, ahead of info-only rows."""
    settings = Settings.from_env(inspect_max_row_reports=3)
    path = tmp_path / "d.jsonl"
    system = [{"role": "system", "content": "Answer briefly."}]  # no default prompt injected
    good, bad = {"messages": system + CHAT}, {"messages": system + CHAT[:1]}
    rows = [good] * 6 + [bad] + [good] * 3
    write_jsonl(path, rows)
    spec = RenderSpec(dialect="tokenizer")
    options = options_for(settings, tokenizer=bundled("smollm2"), spec=spec)
    with open(path, "rb") as fh:
        result = inspect_stream(fh, options).result()
    listed = {r["line"]: {f["code"] for f in r["lints"]} for r in result["rows"]}
    assert result["summary"]["codes"]["pad-is-eos"] == 10
    assert list(listed) == [1, 2, 7]  # by line: the error row, then info-only rows in order
    assert "no-trained-tokens" in listed[7]
    assert result["summary"]["rows_listed"] == 3 and result["summary"]["rows_omitted"] == 7


def test_overlapped_batches_equal_batch_by_batch_evaluation(mixed_rows, tmp_path):
    """`run_threaded` tokenizes one batch while linting the previous one; every outcome, the
    export and the progress reports must be what plain batch-by-batch evaluation gives."""
    rows = (mixed_rows + [{"messages": CHAT}] * 20) * 10  # 310 rows: three batches
    path = tmp_path / "d.jsonl"
    write_jsonl(path, rows)
    options = prepare(Settings.from_env(), tokenizer="qwen3", dialect="tokenizer")
    reports: list[tuple[int, int]] = []
    out = io.StringIO()
    with open(path, "rb") as fh:
        overlapped = run_threaded(
            options, fh, export=out, progress=lambda b, r: reports.append((b, r))
        )
    evaluator, plain, plain_out = (
        RowEvaluator(options),
        Report(options.max_row_reports),
        io.StringIO(),
    )
    with open(path, "rb") as fh:
        raws = list(
            JsonlReader(fh, max_rows=options.max_rows, max_line_bytes=options.max_line_bytes)
        )
    for start in range(0, len(raws), BATCH_ROWS):
        outcomes = evaluator.evaluate_many(raws[start : start + BATCH_ROWS], True)
        plain.record_batch(outcomes, plain_out, None, (0, 0))
    assert overlapped.result() == plain.result()
    assert out.getvalue() == plain_out.getvalue()
    assert [r for _, r in reports] == [128, 256, 310, 310]
    assert reports[-1][0] == path.stat().st_size


def test_pad_is_eos_has_one_severity_in_renders_rows_and_summary(tmp_path):
    """SmolLM2 ships pad == <|im_end|>: a property of the tokenizer, reported as info on
    conversation rows, on pre-tokenized rows (clean or with their end-of-turns masked, which
    eot-untrained reports as the error) and in the summary's worst severity."""
    from tests.helpers.lint import answer_ranges, chat_text, label_by_chars

    tokenizer = bundled("smollm2")
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    text = chat_text(tokenizer, CHAT)
    answers = [m["content"] for m in CHAT if m["role"] == "assistant"]
    rows = [{"messages": CHAT}]
    for closer in ("<|im_end|>", ""):
        ids, labels = label_by_chars(tokenizer, text, answer_ranges(text, answers, closer))
        rows.append({"input_ids": ids, "labels": labels})
    path = tmp_path / "d.jsonl"
    write_jsonl(path, rows)
    options = options_for(
        Settings.from_env(), tokenizer=tokenizer, spec=RenderSpec(dialect="tokenizer")
    )
    with open(path, "rb") as fh:
        result = inspect_stream(fh, options).result()
    found = {r["line"]: {f["code"]: f for f in r["lints"]} for r in result["rows"]}
    assert {found[line]["pad-is-eos"]["severity"] for line in (1, 2, 3)} == {"info"}
    assert "These labels are unaffected" in found[2]["pad-is-eos"]["message"]
    assert "a likely cause" in found[3]["pad-is-eos"]["message"]
    assert found[3]["eot-untrained"]["severity"] == "error"
    assert result["summary"]["worst_severity"]["pad-is-eos"] == "info"
