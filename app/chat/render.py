"""render(conversation, dialect, tokenizer, spec) -> Rendering: the one source of truth.

A dialect (app.chat.layout.Dialect) lays the conversation out: a built-in builds labelled
segments and encodes them as its reference does; a Jinja template is rendered with role
attribution and tokenized as a whole, as `apply_chat_template` does. Then the mask policy picks
trained character ranges and every token gets its message, role, trained flag and character span
(app.chat.columns).

Example: render([Message("user", "Hi"), Message("assistant", "Hello")], get_dialect("chatml"),
                tok, RenderSpec())
         -> Rendering(text="<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n...",
                      labels=[-100, ..., <id of "Hello">, <id of <|im_end|>>, -100])

Design concession: the engine takes resolved objects (a dialect, a tokenizer), never names, so it
imports nothing above it. Datasets go through `render_many`, which gives each row exactly what
`render` gives but tokenizes a batch of rows in one call and keeps tokens as columns
(`TokenColumns`) rather than records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from functools import lru_cache

from app.chat.collector import collector_paused
from app.chat.columns import TokenColumns, token_columns
from app.chat.encoding import TokenizerInfo, tokenizer_info
from app.chat.layout import Dialect, Layout
from app.chat.masking import MaskPolicy, trained_ranges
from app.chat.messages import Message, validate_conversation
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Finding, MessageSpan, Rendering, Token
from app.errors import InputError, LimitError, MaskscopeError
from app.settings import Settings

Renderings = Callable[[], list[Rendering | MaskscopeError]]


@lru_cache(maxsize=1)
def _default_settings() -> Settings:
    return Settings.from_env()


def render(
    conversation: Sequence[Message],
    dialect: Dialect,
    tokenizer: Tokenizer,
    spec: RenderSpec | None = None,
    settings: Settings | None = None,
    *,
    columns: bool = False,
) -> Rendering:
    """Render, tokenize and mask one conversation (settings: the limits; default from the env).
    `columns`: tokens as `TokenColumns` (what a JSON answer or a lint run reads) rather than
    Token records (what the views walk)."""
    spec = spec or RenderSpec()
    settings = settings or _default_settings()
    policy = _checked(conversation, spec, settings)
    with collector_paused():
        layout = dialect.layout(conversation, tokenizer, spec, settings)
        info = tokenizer_info(tokenizer)
        return assemble(layout, policy, spec, settings, dialect.name, info, columns=columns)


def render_many(
    conversations: Sequence[Sequence[Message]],
    dialect: Dialect,
    tokenizer: Tokenizer,
    spec: RenderSpec | None = None,
    settings: Settings | None = None,
) -> list[Rendering | MaskscopeError]:
    """`render` of many conversations, each result equal to its own `render` (or the
    MaskscopeError it would raise): for Jinja dialects the texts are rendered first and
    tokenized in one batch, and tokens come as `TokenColumns`, which is how datasets are
    processed fast.

    Design concession: one bad row's error is returned in its place, not raised, so a caller
    streaming a dataset keeps going; other exceptions propagate.
    """
    return start_many(conversations, dialect, tokenizer, spec, settings)()


def start_many(
    conversations: Sequence[Sequence[Message]],
    dialect: Dialect,
    tokenizer: Tokenizer,
    spec: RenderSpec | None = None,
    settings: Settings | None = None,
    pool: Executor | None = None,
) -> Renderings:
    """`render_many` in two steps, so a dataset reader can overlap batches: the dialect starts
    its layouts now (templates rendered, their tokenization started on `pool`); the returned
    function finishes the renderings. A row's own input error comes before the dialect's.
    """
    spec = spec or RenderSpec()
    settings = settings or _default_settings()
    policies = [_policy_or_error(c, spec, settings) for c in conversations]
    valid = [c for c, p in zip(conversations, policies, strict=True) if type(p) is MaskPolicy]
    with collector_paused():
        layouts = dialect.start_layouts(valid, tokenizer, spec, settings, pool)

    def finish() -> list[Rendering | MaskscopeError]:
        info = tokenizer_info(tokenizer)
        out: list[Rendering | MaskscopeError] = []
        with collector_paused():
            made = iter(layouts())
            for policy in policies:
                if not isinstance(policy, MaskPolicy):
                    out.append(policy)
                    continue
                out.append(_assembled(next(made), policy, spec, settings, dialect.name, info))
        return out

    return finish


def _assembled(
    layout: Layout | MaskscopeError,
    policy: MaskPolicy,
    spec: RenderSpec,
    settings: Settings,
    dialect: str,
    info: TokenizerInfo,
) -> Rendering | MaskscopeError:
    """One row of `start_many`: `assemble` with token columns, or the row's error."""
    if isinstance(layout, MaskscopeError):
        return layout
    try:
        return assemble(layout, policy, spec, settings, dialect, info, columns=True)
    except MaskscopeError as exc:
        return exc


def _policy_or_error(
    conversation: Sequence[Message], spec: RenderSpec, settings: Settings
) -> MaskPolicy | MaskscopeError:
    try:
        return _checked(conversation, spec, settings)
    except MaskscopeError as exc:
        return exc


def _checked(conversation: Sequence[Message], spec: RenderSpec, settings: Settings) -> MaskPolicy:
    """The mask policy, once the conversation and spec are known to be acceptable."""
    overrides = [(k, m.train_override()) for k, m in enumerate(conversation) if m.extra]
    policy = MaskPolicy(
        spec.train_on,
        spec.train_on_eot,
        tuple((k, said) for k, said in overrides if said is not None),
    )
    validate_conversation(
        conversation, max_messages=settings.max_messages, max_chars=settings.max_chars
    )
    if spec.max_length is not None and spec.max_length < 1:
        raise InputError("max_length must be a positive number of tokens.", field="max_length")
    extra = spec.template_json_chars()
    if extra > settings.max_chars:
        raise LimitError(
            f"tools and chat_template_kwargs hold {extra:,} characters of JSON; the limit is "
            f"{settings.max_chars:,} (max_chars setting).",
            field="tools" if spec.tools else "chat_template_kwargs",
            setting="max_chars",
        )
    return policy


def assemble(
    layout: Layout,
    policy: MaskPolicy,
    spec: RenderSpec,
    settings: Settings,
    dialect: str,
    info: TokenizerInfo,
    columns: bool = False,
) -> Rendering:
    """Mask, attribute every token, truncate, and check the token limit. `columns`: tokens as
    `TokenColumns` instead of a list of Token records."""
    text, enc = layout.text, layout.encoded
    keep = len(enc.ids)
    if spec.max_length is not None:
        keep = min(keep, spec.max_length)
    if keep > settings.max_tokens:
        raise LimitError(
            f"The rendering has {keep:,} tokens; the limit is "
            f"{settings.max_tokens:,} (max_tokens setting). Set max_length to cut it.",
            field="messages",
            setting="max_tokens",
        )
    ranges = trained_ranges(
        layout.spans,
        policy,
        len(text),
        layout.generation,
        [*layout.holes, *layout.images, *_untrained_parts(layout, spec)],
    )
    roles: dict[int | None, str] = {s.message: s.role for s in layout.spans}
    table = _columns(layout, ranges, roles, info, keep)
    tokens: Sequence[Token] = table if columns else list(table)
    cut = table.ends[-1] if table.ends else 0
    truncated = len(enc.ids) - keep
    return Rendering(
        text=text[:cut] if truncated else text,
        input_ids=table.ids,
        labels=table.labels,
        attention_mask=[1] * keep,
        tokens=tokens,
        spans=_clip_spans(layout.spans, cut) if truncated else layout.spans,
        dialect=dialect,
        findings=[f for f in layout.findings if _in_range(f, keep)],
        truncated_tokens=truncated,
        meta=dict(layout.meta, full_text_chars=len(text)),
    )


def _untrained_parts(layout: Layout, spec: RenderSpec) -> list[tuple[int, int]]:
    """The reasoning and tool-call parts that `train_reasoning`/`train_tool_calls` leave out."""
    if spec.train_reasoning and spec.train_tool_calls or not layout.parts:
        return []
    skip = {"reasoning"} if not spec.train_reasoning else set()
    if not spec.train_tool_calls:
        skip.add("tool_call")
    return [(a, b) for a, b, part in layout.parts if part in skip]


def _columns(
    layout: Layout,
    ranges: list[tuple[int, int, int | None]],
    roles: dict[int | None, str],
    info: TokenizerInfo,
    keep: int,
) -> TokenColumns:
    """The token columns of a layout; where the dialect names no parts, its content pieces
    are the content."""
    parts = layout.parts
    if parts is None:
        parts = [(p.start, p.end, "content") for p in layout.pieces if p.part == "content"]
    return token_columns(
        layout.text,
        layout.encoded,
        layout.pieces,
        ranges,
        roles,
        info.special_ids,
        keep,
        parts,
        layout.roles,
        layout.holes,
    )


def _clip_spans(spans: list[MessageSpan], cut: int) -> list[MessageSpan]:
    out = []
    for s in spans:
        eot_ok = s.eot_end is not None and s.eot_end <= cut
        out.append(
            MessageSpan(
                s.message,
                s.role,
                min(s.start, cut),
                min(s.end, cut),
                min(s.content_start, cut),
                min(s.content_end, cut),
                s.eot_start if eot_ok else None,
                s.eot_end if eot_ok else None,
                None if s.gen_start is None else min(s.gen_start, cut),
                None if s.gen_end is None else min(s.gen_end, cut),
            )
        )
    return out


def _in_range(finding: Finding, keep: int) -> bool:
    return not finding.tokens or min(finding.tokens) < keep
