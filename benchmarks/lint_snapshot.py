"""Every lint finding over a broad corpus, as JSON: run it on two checkouts and compare.

The corpus: every zoo template (TRL's and axolotl's real templates, dialect custom, each with the
bundled tokenizer of its family) and every bundled tokenizer's own template (dialect tokenizer)
and built-in dialect, over the zoo conversations (system, tools, reasoning, multi-turn, empty and
CJK content), under several specs (train_on, train_on_eot, max_length, add_generation_prompt,
add_special_tokens), deep and shallow; plus the 5,000-row benchmark's rows (inspection's lint
path), pre-tokenized rows (`lint_tokens`) and the 1000-message conversation of P1e. Each finding
is kept whole: code, severity, message, token indices.

Usage (a speed change to app/lint must leave the output identical):
    PYTHONPATH=/path/to/old/checkout python benchmarks/lint_snapshot.py old.json
    python benchmarks/lint_snapshot.py new.json && cmp old.json new.json
The tests package is read from this checkout; `app` from PYTHONPATH when it is set. To compare
app/lint alone while other packages change, point PYTHONPATH at a copy of this checkout's app/
holding the old app/lint (`git worktree add` gives the old one). Set SNAPSHOT_ORDER=reverse to
lint the cases in the opposite order (warm caches see other cases first).

Design concession: the run is a few minutes on two cores (the zoo renders go through the
sandboxed template worker), so it is a script to run by hand, not a test.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # tests/, after PYTHONPATH's app
sys.path.append(str(Path(__file__).resolve().parent))

from app.chat.messages import parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokens import IGNORE_INDEX
from app.dialects.registry import get_dialect
from app.lint import context_for_rendering, lint_rendering, lint_tokens, run_checks
from app.lint.context import TokenView
from app.settings import Settings
from tests.helpers.tokenizers import bundled
from tests.zoo.conversations import CONVERSATIONS
from tests.zoo.templates import ALL_TEMPLATES, template_source, tokenizer_for

BUNDLED = ("smollm2", "llama2", "llama3", "mistral", "qwen3", "gemma3", "gptoss", "deepseek_v3")
BUILTINS = {
    "chatml": "smollm2",
    "llama2": "llama2",
    "llama3": "llama3",
    "mistral": "mistral",
    "gemma": "gemma3",
    "phi3": "llama2",
    "zephyr": "smollm2",
    "alpaca": "llama2",
}
# (name, spec changes, deep): the default spec deep, then what changes the checks' answers.
VARIANTS: tuple[tuple[str, dict[str, Any], bool], ...] = (
    ("default", {}, True),
    ("shallow", {}, False),
    ("all", {"train_on": "all"}, False),
    ("last", {"train_on": "last_assistant", "train_on_eot": False}, True),
    ("cut", {"max_length": 24}, False),
    ("no-eot", {"train_on_eot": False}, False),
    ("genprompt", {"add_generation_prompt": True, "add_special_tokens": True}, True),
)


# Shapes the zoo conversations lack, for the checks they would leave silent.
_CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
_STRING_CALL = {"type": "function", "function": {"name": "get_time", "arguments": "{}"}}
EXTRA: dict[str, list[dict[str, Any]]] = {
    "odd_order": [
        {"role": "assistant", "content": "I speak first."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "Hello?"},
        {"role": "assistant", "content": "Yes."},
        {"role": "assistant", "content": "And again."},
    ],
    "empty_answers": [
        {"role": "user", "content": "Say nothing."},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Again <|im_end|> <|eot_id|> </s> [INST]"},
        {"role": "assistant", "content": "  "},
    ],
    "unmatched_tools": [
        {"role": "user", "content": "Weather and time?"},
        {"role": "assistant", "content": "", "tool_calls": [_CALL, _STRING_CALL]},
        {"role": "tool", "content": "Rain.", "tool_call_id": "nope"},
        {"role": "user", "content": "Thanks."},
        {"role": "assistant", "content": "Welcome."},
    ],
    "unicode": [
        {"role": "system", "content": "Caf\u0065\u0301 ﬁ ① Ｈｉ"},
        {"role": "user", "content": "Ｈｅｌｌｏ e\u0301 <think>x</think>"},
        {"role": "assistant", "content": "<think>unclosed reasoning so 4."},
        {"role": "user", "content": "More"},
        {"role": "assistant", "content": "<think></think>Answer in ①."},
    ],
}


def findings_json(findings: Any) -> list[list[Any]]:
    return [[f.code, f.severity, f.message, list(f.tokens)] for f in findings]


def cases(settings: Settings) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(key, a function returning the findings as JSON) for every case of the corpus."""
    # Imported here, after `app`: these modules put this checkout first on sys.path.
    from api_vs_hf import conversation as long_conversation
    from lint_vs_trl import conversations as benchmark_rows

    for conv in CONVERSATIONS.values():
        tools = {"tools": conv.tools} if conv.tools else {}
        for template in ALL_TEMPLATES:
            base = RenderSpec(
                tokenizer=tokenizer_for(template),
                dialect="custom",
                template=template_source(template),
                **tools,
            )
            yield from _variants(f"zoo:{template}:{conv.name}", base, conv.messages, settings)
        for name in BUNDLED:
            base = RenderSpec(tokenizer=name, dialect="tokenizer", **tools)
            yield from _variants(f"own:{name}:{conv.name}", base, conv.messages, settings)
        for dialect, name in BUILTINS.items():
            base = RenderSpec(tokenizer=name, dialect=dialect, **tools)
            yield from _variants(f"builtin:{dialect}:{conv.name}", base, conv.messages, settings)
    for name, messages in EXTRA.items():
        for template in ALL_TEMPLATES:
            base = RenderSpec(
                tokenizer=tokenizer_for(template),
                dialect="custom",
                template=template_source(template),
            )
            yield from _variants(f"zoo:{template}:{name}", base, messages, settings)
        for bundled_name in BUNDLED:
            base = RenderSpec(tokenizer=bundled_name, dialect="tokenizer")
            yield from _variants(f"own:{bundled_name}:{name}", base, messages, settings)
        for dialect, bundled_name in BUILTINS.items():
            base = RenderSpec(tokenizer=bundled_name, dialect=dialect)
            yield from _variants(f"builtin:{dialect}:{name}", base, messages, settings)
    rows = benchmark_rows(300)
    for name in ("smollm2", "qwen3", "llama3"):
        for k, row in enumerate(rows):
            spec = RenderSpec(tokenizer=name, dialect="tokenizer")
            yield f"row:{name}:{k}", _row_case(spec, row["messages"], settings, deep=k < 2)
            yield f"tokens:{name}:{k}", _token_case(spec, row["messages"], settings, shift=k % 3)
    long = long_conversation()
    smol = bundled("smollm2")
    spec = RenderSpec(tokenizer="smollm2", dialect="custom", template=str(smol.chat_template))
    yield "long:custom", _case(spec, long, settings, deep=True)
    yield "long:cut", _case(replace(spec, max_length=20_000), long, settings, deep=True)


def _variants(
    key: str, base: RenderSpec, messages: list[dict[str, Any]], settings: Settings
) -> Iterator[tuple[str, Callable[[], Any]]]:
    for name, changes, deep in VARIANTS:
        yield f"{key}:{name}", _case(replace(base, **changes), messages, settings, deep)


def _rendered(spec: RenderSpec, messages: list[dict[str, Any]], settings: Settings) -> Any:
    """(conversation, tokenizer, dialect, rendering) of one case."""
    tokenizer, dialect = bundled(spec.tokenizer), get_dialect(spec.dialect)
    conversation = parse_messages(messages)
    rendering = render(conversation, dialect, tokenizer, spec, settings)
    return conversation, tokenizer, dialect, rendering


def _case(
    spec: RenderSpec, messages: list[dict[str, Any]], settings: Settings, deep: bool
) -> Callable[[], Any]:
    """A conversation as /api/render lints it (lint_rendering)."""

    def run() -> Any:
        try:
            conversation, tokenizer, dialect, rendering = _rendered(spec, messages, settings)
        except Exception as exc:  # a template that refuses the conversation: nothing to lint
            return f"refused: {type(exc).__name__}"
        found = lint_rendering(
            rendering,
            conversation=conversation,
            tokenizer=tokenizer,
            dialect=dialect,
            spec=spec,
            settings=settings,
            deep=deep,
        )
        return findings_json(found)

    return run


def _row_case(
    spec: RenderSpec, messages: list[dict[str, Any]], settings: Settings, deep: bool
) -> Callable[[], Any]:
    """A dataset row as inspection lints it (context_for_rendering, then run_checks)."""

    def run() -> Any:
        conversation, tokenizer, dialect, rendering = _rendered(spec, messages, settings)
        ctx = context_for_rendering(
            rendering,
            conversation=conversation,
            tokenizer=tokenizer,
            dialect=dialect,
            spec=spec,
            settings=settings,
        )
        scopes: Any = ("tokens", "rendering", "deep") if deep else ("tokens", "rendering")
        return findings_json(run_checks(ctx, scopes, extra=rendering.findings))

    return run


def _token_case(
    spec: RenderSpec, messages: list[dict[str, Any]], settings: Settings, shift: int
) -> Callable[[], Any]:
    """A pre-tokenized row made from a rendering: labels as rendered, shifted left, or all."""

    def run() -> Any:
        _, tokenizer, _, rendering = _rendered(spec, messages, settings)
        ids, labels = list(rendering.input_ids), list(rendering.labels)
        if shift == 1:
            labels = [*labels[1:], IGNORE_INDEX]
        elif shift == 2:
            labels = list(ids)
        trained = [label != IGNORE_INDEX for label in labels]
        eot_ids = frozenset({tokenizer.eos_token_id} - {None})
        eots = [i for i, tid in enumerate(ids) if tid in eot_ids]
        view = TokenView(ids, trained, [None] * len(ids), eots)
        found = lint_tokens(view, tokenizer=tokenizer, labels=labels, eot_ids=eot_ids)
        return findings_json(found)

    return run


def main() -> None:
    logging.disable(logging.CRITICAL)
    settings = Settings.from_env()
    out = Path(sys.argv[1])
    every = list(cases(settings))
    if os.environ.get("SNAPSHOT_ORDER") == "reverse":
        every.reverse()
    result = {}
    for key, run in every:
        try:
            result[key] = run()
        except Exception as exc:
            result[key] = f"error: {type(exc).__name__}: {exc}"
    out.write_text(json.dumps(result, indent=0, sort_keys=True, ensure_ascii=False))
    refused = sum(1 for v in result.values() if isinstance(v, str))
    print(f"{len(result)} cases ({refused} refused or failed) -> {out}")


if __name__ == "__main__":
    main()
