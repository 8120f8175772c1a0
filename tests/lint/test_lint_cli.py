"""`maskscope lint` as a CI gate and `maskscope inspect` with its exports.

One test runs the real console entry point in a subprocess; the rest call `app.cli.main` in
process (a fresh interpreter costs seconds of imports each time)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.datasets import CHAT, tokenized_row, write_jsonl


def maskscope(*args: str, capsys) -> subprocess.CompletedProcess:
    from app.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def test_console_entry_point_exit_code(tmp_path):
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [{"messages": CHAT[:1]}])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "lint",
            str(path),
            "--tokenizer",
            "qwen3",
            "--dialect",
            "chatml",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "no-trained-tokens" in done.stdout


def test_lint_clean_file_exits_0(tmp_path, capsys):
    path = tmp_path / "clean.jsonl"
    write_jsonl(path, [{"messages": CHAT}] * 3)
    done = maskscope(
        "lint", str(path), "--tokenizer", "qwen3", "--dialect", "chatml", capsys=capsys
    )
    assert done.returncode == 0, done.stderr
    assert "rows                 3 (3 conversations" in done.stdout


def test_lint_exits_1_on_error_finding_and_names_the_code(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [{"messages": CHAT}, tokenized_row("shifted")])
    done = maskscope(
        "lint", str(path), "--tokenizer", "qwen3", "--dialect", "chatml", capsys=capsys
    )
    assert done.returncode == 1
    assert "labels-shifted" in done.stdout and "error" in done.stdout


def test_lint_bundled_llama3_template_fails_the_gate(tmp_path, capsys):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"messages": CHAT}])
    done = maskscope(
        "lint", str(path), "--tokenizer", "llama3", "--dialect", "tokenizer", capsys=capsys
    )
    assert done.returncode == 1
    assert "generation-prompt-in-training" in done.stdout


def test_inspect_json_and_exports(tmp_path, capsys):
    path, out, tpl = tmp_path / "d.jsonl", tmp_path / "p.jsonl", tmp_path / "t.jinja"
    write_jsonl(path, [{"messages": CHAT}, "{oops"])
    done = maskscope(
        "inspect",
        str(path),
        "--tokenizer",
        "smollm2",
        "--dialect",
        "tokenizer",
        "--json",
        "--export-processed",
        str(out),
        "--export-template",
        str(tpl),
        capsys=capsys,
    )
    assert done.returncode == 1  # the unreadable row
    result = json.loads(done.stdout)
    assert result["summary"]["bad_rows"] == 1 and result["rows"][-1]["line"] == 2
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(row) == {"input_ids", "labels", "attention_mask", "line", "row"}
    assert (row["line"], row["row"]) == (1, 0)
    assert "{% generation %}" in tpl.read_text()


def test_unknown_dialect_exits_2_with_a_sentence(tmp_path, capsys):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"messages": CHAT}])
    done = maskscope("lint", str(path), "--tokenizer", "qwen3", "--dialect", "nope", capsys=capsys)
    assert done.returncode == 2 and "Unknown dialect 'nope'" in done.stderr


def test_fail_on_warning_and_first_lines_per_code(tmp_path, capsys):
    path = tmp_path / "warn.jsonl"
    rows = [{"messages": CHAT}] * 2 + [tokenized_row("copy")] * 12  # labels-equal-inputs: warning
    write_jsonl(path, rows)
    args = ("lint", str(path), "--tokenizer", "qwen3", "--dialect", "chatml")
    assert maskscope(*args, capsys=capsys).returncode == 0  # warnings only: passes by default
    done = maskscope(*args, "--fail-on", "warning", capsys=capsys)
    assert done.returncode == 1
    line = next(x for x in done.stdout.splitlines() if x.startswith("labels-equal-inputs"))
    assert line.split()[1:3] == ["warning", "12"]
    assert line.endswith("3, 4, 5, 6, 7, 8, 9, 10, 11, 12 …")  # the first ten lines


def test_inspect_lists_the_worst_rows_first(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, [tokenized_row("copy"), {"messages": CHAT[:1]}])
    done = maskscope(
        "inspect", str(path), "--tokenizer", "qwen3", "--dialect", "chatml", capsys=capsys
    )
    listed = [x for x in done.stdout.splitlines() if x.startswith("line ")]
    assert listed[0].startswith("line 2: error   no-trained-tokens")


def test_unreadable_template_file_exits_2(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"messages": CHAT}])
    done = maskscope(
        "lint",
        str(path),
        "--tokenizer",
        "qwen3",
        "--dialect",
        "custom",
        "--template",
        str(tmp_path / "missing.jinja"),
        capsys=capsys,
    )
    assert done.returncode == 2 and "--template" in done.stderr
