"""Reference pipelines written the way training scripts write them, independent of Maskscope:
render with transformers' apply_chat_template, tokenize with offsets, label by character ranges."""

from __future__ import annotations

IGNORE = -100


def chat_text(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False)


def label_by_chars(
    tokenizer, text: str, ranges: list[tuple[int, int]], add_special_tokens: bool = False
) -> tuple[list[int], list[int]]:
    """input_ids of `text` and labels that keep every token overlapping one of `ranges`."""
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids = enc["input_ids"]
    labels = [
        tid if any(s < r_end and e > r_start for r_start, r_end in ranges) else IGNORE
        for tid, (s, e) in zip(ids, enc["offset_mapping"], strict=True)
    ]
    return ids, labels


def answer_ranges(text: str, answers: list[str], closer: str) -> list[tuple[int, int]]:
    """Character ranges of each answer followed by `closer` (the end-of-turn marker)."""
    ranges, at = [], 0
    for answer in answers:
        start = text.index(answer, at)
        end = start + len(answer) + len(closer)
        assert text[start + len(answer) : end] == closer
        ranges.append((start, end))
        at = end
    return ranges


def lint_conversation(
    tokenizer_name, dialect: str, messages: list[dict], *, deep: bool = True, **options
):
    """Render with the engine and lint: (rendering, findings, tokenizer); `tokenizer_name` is a
    bundled name or a tokenizer itself; `deep=False` skips the checks that re-render."""
    from app.chat.messages import parse_messages
    from app.chat.render import render
    from app.chat.spec import RenderSpec
    from app.dialects.registry import get_dialect
    from app.lint import lint_rendering
    from app.settings import Settings
    from tests.helpers.tokenizers import bundled

    tokenizer = bundled(tokenizer_name) if isinstance(tokenizer_name, str) else tokenizer_name
    conversation = parse_messages(messages)
    opts = RenderSpec(dialect=dialect, **options)
    chat_format = get_dialect(dialect)
    settings = Settings.from_env()
    rendering = render(conversation, chat_format, tokenizer, opts, settings)
    findings = lint_rendering(
        rendering,
        conversation=conversation,
        tokenizer=tokenizer,
        dialect=chat_format,
        spec=opts,
        settings=settings,
        deep=deep,
    )
    return rendering, findings, tokenizer


def by_code(findings, code: str):
    return [f for f in findings if f.code == code]
