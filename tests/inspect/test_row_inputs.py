"""Dataset rows that bring their own `tools` and `chat_template_kwargs` columns are rendered
under them (and only they are), in the inspection and in `maskscope render`."""

from __future__ import annotations

import io
import json

from app.chat.messages import parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.cli import main
from app.dialects.registry import get_dialect
from app.service.inspect import inspect_stream, prepare
from app.settings import Settings
from tests.helpers.datasets import write_jsonl
from tests.helpers.tokenizers import bundled

MESSAGES = [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Sunny."}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
KWARGS = {"enable_thinking": False}
# Writes the tools and what `enable_thinking` is, so a row's own columns show in its ids.
TEMPLATE = (
    "{{ tools | tojson if tools else '' }}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{{ 'thinking off' if enable_thinking is false else '' }}"
)


def _ids(**options) -> list[int]:
    spec = RenderSpec(tokenizer="qwen3", dialect="custom", template=TEMPLATE, **options)
    conversation = parse_messages(MESSAGES)
    return render(conversation, get_dialect("custom"), bundled("qwen3"), spec).input_ids


def test_each_row_renders_under_its_own_tools_and_kwargs(tmp_path):
    rows = [
        {"messages": MESSAGES},
        {"messages": MESSAGES, "tools": TOOLS},
        {"messages": MESSAGES, "chat_template_kwargs": KWARGS},
        {"messages": MESSAGES},
    ]
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, rows)
    options = prepare(Settings.from_env(), tokenizer="qwen3", dialect="custom", template=TEMPLATE)
    export = io.StringIO()
    with open(path, "rb") as fh:
        inspect_stream(fh, options, export=export).result()
    got = [json.loads(line)["input_ids"] for line in export.getvalue().splitlines()]
    plain, with_tools, with_kwargs = _ids(), _ids(tools=TOOLS), _ids(chat_template_kwargs=KWARGS)
    assert with_tools != plain and with_kwargs != plain
    assert got == [plain, with_tools, with_kwargs, plain]


def test_render_cli_takes_a_rows_tools_column(tmp_path, capsys):
    path = tmp_path / "row.json"
    path.write_text(json.dumps({"messages": MESSAGES, "tools": TOOLS}))
    argv = ["render", str(path), "--tokenizer", "qwen3", "--dialect", "tokenizer", "--json"]
    assert main(argv) == 0
    want = bundled("qwen3").apply_chat_template(MESSAGES, tools=TOOLS, tokenize=False)
    assert json.loads(capsys.readouterr().out)["text"] == want
