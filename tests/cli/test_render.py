"""`maskscope render`: plain and JSON output on a JSON conversation and on a JSONL row."""

from __future__ import annotations

import json

from app.cli import main
from app.cli.render import show_text
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS

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


TOOL_TURNS = TOOL_CALL_TURNS[:2]


def _render_json(tmp_path, capsys, *flags):
    conv, tools = tmp_path / "conv.json", tmp_path / "tools.json"
    conv.write_text(json.dumps(TOOL_TURNS))
    tools.write_text(json.dumps(WEATHER_TOOLS))
    argv = ["render", str(conv), "--tokenizer", "qwen3", "--dialect", "tokenizer", "--json"]
    code = main([*argv, *(str(tools) if f == "TOOLS" else f for f in flags)])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else captured.err)


def test_render_passes_tools_and_template_kwargs_to_the_template(tmp_path, capsys):
    code, body = _render_json(
        tmp_path, capsys, "--tools", "TOOLS", "--chat-template-kwargs", '{"enable_thinking": true}'
    )
    assert code == 0
    assert (
        '"name": "get_weather", "description": "Weather in a city"' in body["text"]
    )  # the tools system block


def test_render_no_train_reasoning_and_no_train_tool_calls(tmp_path, capsys):
    _, body = _render_json(tmp_path, capsys, "--tools", "TOOLS")
    trained = {t["part"] for t in body["tokens"] if t["trained"]}
    assert {"reasoning", "tool_call"} <= trained
    flags = ("--tools", "TOOLS", "--no-train-reasoning", "--no-train-tool-calls")
    _, body = _render_json(tmp_path, capsys, *flags)
    trained = {t["part"] for t in body["tokens"] if t["trained"]}
    assert not trained & {"reasoning", "tool_call"}
    assert any(t["trained"] for t in body["tokens"])  # the end-of-turn marker still is


def test_render_refuses_a_reserved_template_kwarg(tmp_path, capsys):
    code, err = _render_json(tmp_path, capsys, "--chat-template-kwargs", '{"bos_token": "x"}')
    assert code == 2 and "'bos_token'" in err and "--chat-template-kwargs" in err


def test_lint_takes_the_same_template_inputs(tmp_path, capsys):
    rows, tools = tmp_path / "rows.jsonl", tmp_path / "tools.json"
    rows.write_text(json.dumps({"messages": TOOL_TURNS}) + "\n")
    tools.write_text(json.dumps(WEATHER_TOOLS))
    argv = ["lint", str(rows), "--tokenizer", "qwen3", "--dialect", "tokenizer", "--quiet"]
    assert main([*argv, "--tools", str(tools), "--no-train-tool-calls"]) in (0, 1)
    assert main([*argv, "--chat-template-kwargs", '{"messages": []}']) == 2
    assert "'messages'" in capsys.readouterr().err
