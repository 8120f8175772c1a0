"""`maskscope render FILE --tokenizer T --dialect D`: tokens coloured by role, trained ones marked.

In the spirit of axolotl's `preprocess --debug`, but with roles: each token is printed as its text
(control characters escaped) followed by `(id, label)`, coloured by the role of its message, with
trained tokens in bold and underlined; `--json` prints exactly what POST /api/render returns.

Design concession: colours are ANSI escapes, used only on a terminal (or with --color always);
piped output stays plain text with the role written as a prefix where it changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.chat.messages import parse_row
from app.chat.spec import (
    TRAIN_ON,
    FrozenKwargs,
    FrozenTools,
    RenderSpec,
    freeze_kwargs,
    freeze_tools,
    json_field,
    row_spec,
)
from app.chat.tokens import Finding, Rendering, Token
from app.errors import InputError, MaskscopeError
from app.service.render import lint_rendered, render_conversation, rendering_json
from app.settings import Settings

ROLE_COLOURS = {
    "system": "35",
    "developer": "35",
    "user": "34",
    "assistant": "32",
    "tool": "33",
    None: "90",
}
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render = sub.add_parser("render", help="Show a conversation's tokens, roles and labels.")
    render.add_argument("path", type=Path, help="A JSON conversation/row, or a JSONL file.")
    add_render_arguments(render)
    render.add_argument("--add-generation-prompt", action="store_true")
    render.add_argument("--row", type=int, default=0, help="Row of a JSONL file (0-based).")
    render.add_argument("--json", action="store_true", help="Print the /api/render JSON.")
    render.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    render.set_defaults(func=run_render)


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """The render options every command that renders conversations takes (render, lint, inspect)."""
    parser.add_argument("--tokenizer", required=True, help="Bundled name, local folder, Hub id.")
    parser.add_argument("--dialect", required=True, help="Built-in slug, tokenizer or custom.")
    parser.add_argument("--template", type=Path, help="Jinja file for --dialect custom.")
    parser.add_argument("--train-on", default="assistant", choices=TRAIN_ON)
    parser.add_argument("--no-train-on-eot", dest="train_on_eot", action="store_false")
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument(
        "--add-special-tokens",
        action="store_true",
        help="Tokenize the rendered text as tokenizer(text) does, adding the tokenizer's BOS "
        "(the apply_chat_template(tokenize=False) then tokenizer(text) pipeline).",
    )
    parser.add_argument(
        "--tools", type=Path, help="JSON file: a list of tool specs (apply_chat_template tools)."
    )
    parser.add_argument(
        "--chat-template-kwargs",
        help="Extra template variables as a JSON object, e.g. '{\"enable_thinking\": false}'.",
    )
    parser.add_argument("--no-train-reasoning", dest="train_reasoning", action="store_false")
    parser.add_argument("--no-train-tool-calls", dest="train_tool_calls", action="store_false")


def render_spec(args: argparse.Namespace) -> RenderSpec:
    """The RenderSpec of the arguments `add_render_arguments` adds (a template file is read)."""
    template = args.template.read_text(encoding="utf-8") if args.template else None
    return RenderSpec(
        tokenizer=args.tokenizer,
        dialect=args.dialect,
        template=template,
        train_on=args.train_on,
        train_on_eot=args.train_on_eot,
        add_generation_prompt=getattr(args, "add_generation_prompt", False),
        max_length=args.max_length,
        add_special_tokens=args.add_special_tokens,
        **template_inputs(args),
    )


def template_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The RenderSpec fields of --tools, --chat-template-kwargs, --no-train-reasoning and
    --no-train-tool-calls (files read, JSON parsed and frozen)."""
    return {
        "tools": _tools(args.tools),
        "chat_template_kwargs": _json_object(args.chat_template_kwargs),
        "train_reasoning": args.train_reasoning,
        "train_tool_calls": args.train_tool_calls,
    }


def _tools(path: Path | None) -> FrozenTools | None:
    """The tool specs in a JSON file (a list of objects), frozen for the spec."""
    if path is None:
        return None
    try:
        tools = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.", field="tools") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--tools {path} is not JSON: {exc.msg}.", field="tools") from None
    return freeze_tools(tools, "--tools")


def _json_object(raw: str | None) -> FrozenKwargs:
    """--chat-template-kwargs: a JSON object of template variables, frozen for the spec."""
    value = json_field(raw, "--chat-template-kwargs", "chat_template_kwargs")
    return freeze_kwargs(value, "--chat-template-kwargs")


def read_row(path: Path, row: int = 0) -> Any:
    """A JSON file's value (a messages list or a row) or row `row` of a JSONL file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.", field="path") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    lines = [line for line in raw.splitlines() if line.strip()]
    if not 0 <= row < len(lines):
        raise InputError(f"{path} has {len(lines)} rows; --row {row} does not exist.", field="row")
    try:
        return json.loads(lines[row])
    except json.JSONDecodeError as exc:
        raise InputError(f"Row {row} of {path} is not JSON: {exc.msg}.", field="row") from None


def run_render(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        row = read_row(args.path, args.row)
        spec = row_spec(render_spec(args), row)  # a row's own tools column wins
        rendered = render_conversation(parse_row(row), spec, settings)
        rendering, lints = rendered.rendering, lint_rendered(rendered, settings)
    except MaskscopeError as exc:
        sys.stderr.write(f"maskscope render: {exc.message}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(rendering_json(rendering, lints), ensure_ascii=False) + "\n")
        return 0
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    sys.stdout.write(format_rendering(rendering, lints, colour=colour))
    return 0


def show_text(text: str) -> str:
    """A token's text made printable. Example: "a\\n\\x00" -> "a\\\\n\\\\x00"."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif not ch.isprintable() and ch != " ":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def format_token(tok: Token, colour: bool) -> str:
    body = f"{show_text(tok.text)}({tok.id}, {tok.label})"
    if not colour:
        return f"*{body}*" if tok.trained else body
    style = ROLE_COLOURS.get(tok.role, "90") + (";1;4" if tok.trained else "")
    return f"\x1b[{style}m{body}\x1b[0m"


def format_rendering(rendering: Rendering, lints: list[Finding], *, colour: bool) -> str:
    """Tokens (a role prefix where the role changes, one line per message), stats, lints."""
    parts: list[str] = []
    current: Any = object()
    part = "markup"
    for tok in rendering.tokens:
        if (tok.message, tok.role) != current:
            current = (tok.message, tok.role)
            name = tok.role or "-"
            prefix = (
                f"\x1b[{ROLE_COLOURS.get(tok.role, '90')}m[{name}]\x1b[0m "
                if colour
                else f"[{name}] "
            )
            parts.append(("\n" if parts else "") + prefix)
        if tok.part != part:  # where reasoning or a tool call starts inside a turn
            part = tok.part
            if part in ("reasoning", "tool_call", "image", "audio"):
                parts.append(f"<{part}> ")
        parts.append(format_token(tok, colour) + " ")
    stats = rendering.stats()
    legend = "trained tokens are bold+underlined" if colour else "trained tokens are *starred*"
    lines = [
        "".join(parts).rstrip(),
        "",
        (
            f"{stats['tokens']} tokens, {stats['trained']} trained, {stats['truncated']} "
            f"truncated ({legend}; (id, label) after each token)"
        ),
    ]
    lines += [f"{f.severity}: {f.code}: {f.message}" for f in lints]
    return "\n".join(lines) + "\n"
