"""`maskscope render`: plain and JSON output on a JSON conversation and on a JSONL row."""

from __future__ import annotations

import json

from app.cli import main
from app.cli.render import show_text

CONV = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello\tthere"}]


def test_render_prints_roles_ids_and_marks_trained_tokens(tmp_path, capsys):
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(CONV))
    assert main(["render", str(path), "--tokenizer", "qwen3", "--dialect", "chatml"]) == 0
    out = capsys.readouterr().out
    assert "[user] <|im_start|>(151644, -100)" in out
    assert "*<|im_end|>(151645, 151645)*" in out  # trained end-of-turn, starred
    assert "\\t" in out and "\t" not in out  # control characters escaped
    assert "14 tokens, 4 trained, 0 truncated" in out


def test_render_json_on_a_jsonl_row(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    rows = [
        {"messages": CONV},
        {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    argv = [
        "render",
        str(path),
        "--tokenizer",
        "llama3",
        "--dialect",
        "llama3",
        "--row",
        "1",
        "--json",
    ]
    assert main(argv) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["text"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>")
    assert [t["text"] for t in body["tokens"] if t["trained"]] == ["A", "<|eot_id|>"]


def test_add_special_tokens_flag_adds_the_tokenizers_bos(tmp_path, capsys):
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(CONV))
    argv = ["render", str(path), "--tokenizer", "gemma3", "--dialect", "gemma", "--json"]
    assert main(argv) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*argv, "--add-special-tokens"]) == 0
    doubled = json.loads(capsys.readouterr().out)
    assert doubled["input_ids"] == [2, *plain["input_ids"]] and plain["input_ids"][0] == 2
    assert "double-bos" in {f["code"] for f in doubled["lints"]}


def test_render_errors_exit_2_with_a_sentence(tmp_path, capsys):
    path = tmp_path / "conv.json"
    path.write_text(json.dumps([{"role": "robot", "content": "x"}]))
    assert main(["render", str(path), "--tokenizer", "qwen3", "--dialect", "chatml"]) == 2
    assert "messages[0].role" in capsys.readouterr().err


def test_show_text_escapes_control_characters():
    assert show_text("a\n\x00\x1b b") == "a\\n\\x00\\x1b b"
