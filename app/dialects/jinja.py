"""Jinja-template dialects: the tokenizer's own `chat_template` (`tokenizer`) and `custom`.

The template sees what `apply_chat_template` gives it (messages, tools=None, documents=None,
add_generation_prompt, and the tokenizer's special tokens as variables); the output is tokenized as
one string, so ids equal `apply_chat_template(tokenize=True)`.

Design concession: a pasted template, or one that came with a local or Hub tokenizer, is untrusted
code and runs in a worker process (see app.templating.worker); a bundled tokenizer's own template
runs in-process in the same limited sandbox, trading the kill switch for speed.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.chat.encoding import (
    Encoded,
    encode_later,
    encode_whole,
    encoded_from_pieces,
    marker_offsets,
    tokenizer_info,
    with_added_specials,
    with_specials_later,
)
from app.chat.images import Family, MediaSize, expand_images, family_for
from app.chat.layout import Labelled, Layout, Layouts, Piece
from app.chat.masking import subtract
from app.chat.messages import PART_KINDS, REASONING_FIELDS, ROLES, Message
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Finding, MessageSpan
from app.dialects.turns import Scan, end_pattern, generated_turn, injected_prefix, turn_parts
from app.errors import InputError, MaskscopeError
from app.settings import Settings
from app.templating.limits import check_template_size
from app.templating.locating import Locator, locate_messages
from app.templating.sandbox import has_generation_tags
from app.templating.tracking import (
    Attributed,
    generation_cue,
    render_attributed,
    render_untrusted,
)
from app.templating.worker import run_in_worker
from app.tokenizers.counting import snapshot_file


def template_source(dialect: str, tokenizer: Tokenizer, spec: RenderSpec) -> str:
    """The Jinja source to render: the pasted one, or the tokenizer's default template."""
    if dialect == "custom":
        if not spec.template or not spec.template.strip():
            raise InputError(
                "dialect 'custom' needs the Jinja source in the 'template' field.", field="template"
            )
        return spec.template
    source = getattr(tokenizer, "chat_template", None)
    if isinstance(source, dict):  # named templates: transformers takes "tool_use" for tools
        named = source.get("tool_use") if spec.tools is not None else None
        source = named or source.get("default")
    if not source:
        raise InputError(
            "This tokenizer has no chat_template; choose a built-in dialect "
            "(e.g. chatml) or paste a template with dialect 'custom'.",
            field="dialect",
        )
    return str(source)


def template_messages(conversation: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as the template sees them (reasoning aliases as transformers adds them)."""
    out = []
    for m in conversation:
        if not m.extra and m.parts is None:  # most dataset messages: nothing to alias
            out.append({"role": m.role, "content": m.content})
            continue
        item = {k: v for k, v in m.to_dict().items() if v is not None}
        reasoning = next((item[k] for k in REASONING_FIELDS if item.get(k) is not None), None)
        if reasoning is not None:
            item = {"thinking": reasoning, **item, "reasoning_content": reasoning}
        out.append(item)
    return out


def template_context(tokenizer: Tokenizer, spec: RenderSpec) -> dict[str, Any]:
    """The variables besides `messages`, as apply_chat_template(messages, tools=..., **kwargs)
    gives them: the special tokens, then the spec's tools and extra variables."""
    return {
        **tokenizer.special_tokens_map,
        "documents": None,
        **spec.template_variables(),
        "add_generation_prompt": spec.add_generation_prompt,
    }


@dataclass(frozen=True)
class PreparedTemplate:
    """What every render under one Jinja dialect shares, worked out once for a whole batch:
    the source, the variables besides `messages`, where it may run, whether it has tags."""

    source: str
    context: dict[str, Any]
    trusted: bool
    tagged: bool
    # (tokenizer file, max_tokens, cut texts) for the worker's token count (and the ids it
    # sends back); see app.tokenizers.counting.
    token_cap: tuple[str, int, tuple[str, ...]] | None = None
    # How this tokenizer's model expands image placeholders (None: its vocabulary has none).
    images: Family | None = None
    # The same for audio placeholders.
    audio: Family | None = None


def prepare_template(
    dialect: str, tokenizer: Tokenizer, spec: RenderSpec, settings: Settings
) -> PreparedTemplate:
    """The template to render for `dialect`, checked against the size limit."""
    source = template_source(dialect, tokenizer, spec)
    check_template_size(source, settings)
    trusted = trusted_template(dialect, tokenizer, settings)
    return PreparedTemplate(
        source,
        template_context(tokenizer, spec),
        trusted,
        has_generation_tags(source),
        None if trusted else _token_cap(tokenizer, spec, settings),
        family_for(tokenizer_info(tokenizer).added),
        family_for(tokenizer_info(tokenizer).added, "audio"),
    )


def _token_cap(
    tokenizer: Tokenizer, spec: RenderSpec, settings: Settings
) -> tuple[str, int, tuple[str, ...]] | None:
    """What the worker needs to refuse a rendering over max_tokens. None when max_length cuts
    the rendering to max_tokens or fewer: then any length is accepted, and counted here."""
    if spec.max_length is not None and spec.max_length <= settings.max_tokens:
        return None
    path = snapshot_file(tokenizer)
    cut_texts = tokenizer_info(tokenizer).cut_texts
    return None if path is None else (path, settings.max_tokens, cut_texts)


@dataclass(frozen=True)
class TemplateDialect:
    """A Jinja dialect (an `app.chat.layout.Dialect`): "tokenizer" renders the tokenizer's own
    chat_template, "custom" the source in the spec's `template`."""

    name: str
    title: str
    description: str

    def layout(
        self,
        conversation: Sequence[Message],
        tokenizer: Tokenizer,
        spec: RenderSpec,
        settings: Settings,
    ) -> Layout:
        """Render the template with role attribution and tokenize it as one string."""
        template = prepare_template(self.name, tokenizer, spec, settings)
        att = attribute_conversation(conversation, template, settings)
        # The worker's ids, where it tokenized the text to count it: one tokenization per render.
        sent = att.encoding
        encoded = None if sent is None else encoded_from_pieces(tokenizer, att.text, *sent)
        if encoded is None:
            encoded = encode_whole(tokenizer, att.text)
        if spec.add_special_tokens:  # tokenizer(text): the pipeline that doubles a BOS
            encoded = with_added_specials(tokenizer, encoded, len(att.text))
        return layout_from_attributed(att, conversation, tokenizer, template.tagged, encoded)

    def start_layouts(
        self,
        conversations: Sequence[Sequence[Message]],
        tokenizer: Tokenizer,
        spec: RenderSpec,
        settings: Settings,
        pool: Executor | None,
    ) -> Layouts:
        """The template is prepared once and every text rendered now; their tokenization, one
        batch, starts on `pool` (see `encode_later`) and the returned function finishes."""
        try:
            template = prepare_template(self.name, tokenizer, spec, settings)
        except MaskscopeError as exc:
            error = exc  # every row gets it (after its own input errors, which the engine has)
            return lambda: [error] * len(conversations)
        staged = [_attributed(c, template, settings) for c in conversations]
        texts = [att.text for att in staged if not isinstance(att, MaskscopeError)]
        encoding = encode_later(tokenizer, texts, pool)
        if spec.add_special_tokens:
            encoding = with_specials_later(tokenizer, encoding, texts)

        def finish() -> list[Layout | MaskscopeError]:
            encoded = iter(encoding())
            out: list[Layout | MaskscopeError] = []
            for conversation, att in zip(conversations, staged, strict=True):
                if isinstance(att, MaskscopeError):
                    out.append(att)
                    continue
                try:
                    out.append(
                        layout_from_attributed(
                            att, conversation, tokenizer, template.tagged, next(encoded)
                        )
                    )
                except MaskscopeError as exc:
                    out.append(exc)
            return out

        return finish

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "special_tokens": [],
            "roles": list(ROLES),
        }


def _attributed(
    conversation: Sequence[Message], template: PreparedTemplate, settings: Settings
) -> Attributed | MaskscopeError:
    try:
        return attribute_conversation(conversation, template, settings)
    except MaskscopeError as exc:
        return exc


def attribute_conversation(
    conversation: Sequence[Message], template: PreparedTemplate, settings: Settings
) -> Attributed:
    """The template's text for `conversation`, with role attribution; image and audio
    placeholders expanded as the model's processor expands them."""
    att = attribute_template(
        template.source,
        template_messages(conversation),
        template.context,
        settings=settings,
        trusted=template.trusted,
        token_cap=template.token_cap,
    )
    for family in (template.images, template.audio):
        sizes = _media_sizes(conversation, family.kind) if family is not None else []
        if family is not None and sizes:
            att = expand_attributed(att, family, sizes)
    return att


def _media_sizes(conversation: Sequence[Message], kind: str) -> list[MediaSize]:
    """The size (image) or length (audio) of every part of `kind`, in order."""
    return [
        MediaSize(_pixels(p.get("width")), _pixels(p.get("height")), _seconds(p.get("duration_s")))
        for m in conversation
        if m.parts
        for p in m.parts
        if PART_KINDS.get(p.get("type", "")) == kind
    ]


def _pixels(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(value: Any) -> float | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) else None


def expand_attributed(att: Attributed, family: Family, sizes: Sequence[MediaSize]) -> Attributed:
    """`att` with the family's (image or audio) placeholders expanded; regions, tag spans and
    the ranges of earlier expansions moved to match (the worker's encoding no longer holds)."""
    out = expand_images(att.text, family, sizes)
    move = out.position

    def moved(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(move(a), move(b)) for a, b in ranges]

    found: dict[str, Any] = {"images": moved(att.images), "audio": moved(att.audio)}
    if family.kind == "audio":
        found.update(audio=out.images, audio_placeholders=len(out.images), audio_count=len(sizes))
    else:
        found.update(images=out.images, placeholders=len(out.images), image_count=len(sizes))
    return replace(
        att,
        text=out.text,
        regions=[(move(a), move(b), owner) for a, b, owner in att.regions],
        generation=moved(att.generation),
        encoding=None,
        **found,
    )


def attribute_template(
    source: str,
    messages: list[dict[str, Any]],
    context: dict[str, Any],
    *,
    settings: Settings,
    trusted: bool,
    token_cap: tuple[str, int, tuple[str, ...]] | None = None,
) -> Attributed:
    """Render with role attribution: in-process when `trusted`, else in a killable worker
    (which refuses output over `token_cap`, see `render_untrusted`)."""
    if trusted:
        att = render_attributed(
            source,
            messages,
            context,
            max_range=settings.max_range,
            max_chars=settings.max_render_chars,
            limited=False,
        )
        att.cue = generation_cue(
            source, context, settings.max_range, settings.max_render_chars, limited=False
        )
        return att
    return Attributed.from_json(
        run_in_worker(
            render_untrusted,
            source,
            messages,
            context,
            settings.max_range,
            settings.max_render_chars,
            token_cap,
            settings=settings,
        )
    )


def trusted_template(dialect: str, tokenizer: Tokenizer, settings: Settings) -> bool:
    """Only the bundled tokenizers' own templates render in-process; a pasted template, or one
    that came with a local folder or a Hub download, is untrusted and goes to the worker."""
    if dialect != "tokenizer":
        return False
    return _inside(getattr(tokenizer, "name_or_path", "") or "", settings.assets_dir)


@lru_cache(maxsize=64)
def _inside(origin: str, assets_dir: Path) -> bool:
    # Cached: resolving paths is a dozen system calls, and datasets ask once per row.
    try:
        return Path(origin).resolve().is_relative_to(assets_dir.resolve())
    except (OSError, ValueError):
        return False


def layout_from_attributed(
    att: Attributed,
    conversation: Sequence[Message],
    tokenizer: Tokenizer,
    tagged: bool,
    encoded: Encoded | None = None,
) -> Layout:
    """Tokenize the rendered text (unless `encoded` is its encoding already), locate each
    message in it, and label every character."""
    info = tokenizer_info(tokenizer)
    if encoded is None:
        encoded = encode_whole(tokenizer, att.text)
    text = att.text
    specials = [(s, e, text[s:e]) for s, e in marker_offsets(encoded, info.marker_ids)]
    locator = Locator(text, specials, info.eot_texts)
    calls = [_tool_names(m) for m in conversation] if any(m.extra for m in conversation) else None
    spans, missing = locate_messages(
        att, [m.content for m in conversation], [m.role for m in conversation], locator, calls
    )
    ends = end_pattern(info.eot_texts)
    bos = len(info.bos) if info.bos and text.startswith(info.bos) else 0
    parts, unowned_roles, holes, found = _turns(att, spans, conversation, ends, bos, missing)
    if att.images or att.audio:  # placeholder tokens are the encoders': never trained
        parts = _with_media(parts, att.images, att.audio)
    layout = Layout(
        text=text,
        encoded=encoded,
        spans=spans,
        pieces=_pieces(att, spans, bos, unowned_roles),
        generation=list(att.generation) if tagged else None,
        parts=parts,
        roles=unowned_roles,
        holes=holes,
        images=sorted(att.images + att.audio),
        meta=_meta(att, tagged),
    )
    missing = [k for k in missing if k not in found]
    if missing:
        layout.findings.append(_missing_finding(missing, spans, conversation))
    return layout


def _meta(att: Attributed, tagged: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"tagged": True} if tagged else {}
    if att.image_count or att.placeholders:
        meta["images"] = {"placeholders": att.placeholders, "images": att.image_count}
    if att.audio_count or att.audio_placeholders:
        meta["audio"] = {"placeholders": att.audio_placeholders, "audio": att.audio_count}
    return meta


def _with_media(
    parts: Labelled, images: list[tuple[int, int]], audio: list[tuple[int, int]]
) -> Labelled:
    """The parts with each image range labelled `image` and each audio range `audio` (cut out
    of any part it lies in)."""
    out: Labelled = []
    for a, b, part in parts:
        pieces = [(a, b)]
        for i0, i1 in (*images, *audio):
            pieces = subtract(pieces, i0, i1)
        out.extend((s, e, part) for s, e in pieces if e > s)
    out.extend((a, b, "image") for a, b in images)
    out.extend((a, b, "audio") for a, b in audio)
    return sorted(out)


def _pieces(
    att: Attributed, spans: list[MessageSpan], bos: int, unowned_roles: Labelled
) -> list[Piece]:
    """Who owns every character: the chunk regions, with a leading BOS, an injected turn and
    the contents and end-of-turn markers that sit in another message's chunk painted over."""
    overlays: list[Piece] = []
    if (
        bos
        and att.regions
        and att.regions[0][2] is not None
        and not any(a == 0 for a, _, _ in unowned_roles)
    ):
        overlays.append(Piece(0, bos, None, "bos"))  # a leading BOS belongs to no message
    for a, b, _ in unowned_roles:
        overlays.append(Piece(a, b, None, "injected"))
    region_starts = [r[0] for r in att.regions]
    for s in spans:
        # Only text owned by another message's chunk needs painting (a folded system prompt).
        if not _inside_own(att.regions, region_starts, s.content_start, s.content_end, s.message):
            overlays.append(Piece(s.content_start, s.content_end, s.message, "content"))
        if (
            s.eot_start is not None
            and s.eot_end is not None
            and not _inside_own(att.regions, region_starts, s.eot_start, s.eot_end, s.message)
        ):
            overlays.append(Piece(s.eot_start, s.eot_end, s.message, "eot"))
    base = [Piece(s, e, owner, "turn") for s, e, owner in att.regions]
    return overlay(base, overlays)


def _injected_system(text: str, first: MessageSpan, ends: re.Pattern[str], bos: int) -> Labelled:
    """The system turn a template writes on its own before the first message, if any."""
    # A BOS that opens a role header (SmolLM2's is `<|im_start|>`) is part of that turn.
    opens = bos and text[bos : bos + 1].isalnum()
    injected = injected_prefix(text, first, ends, 0 if opens else bos)
    return [] if injected is None else [(*injected, "system")]


# Long: one pass over the spans sets every assistant turn and gathers parts, holes and found
# contents; split, it would hand five accumulators between helpers on every dataset row.
def _turns(
    att: Attributed,
    spans: list[MessageSpan],
    conversation: Sequence[Message],
    ends: re.Pattern[str],
    bos: int,
    missing: list[int],
) -> tuple[Labelled, Labelled, list[tuple[int, int]], set[int]]:
    """Set each assistant span's generated stretch (and its end-of-turn marker, found as text);
    return the token parts, the roles of text that belongs to no message, and the assistant
    messages whose turn was found although their content was not (a template that rewrites
    it, e.g. drops the reasoning: what it writes is what the model learns)."""
    text = att.text
    own: dict[int, list[tuple[int, int]]] = {}
    for start, end, owner in att.regions:
        if owner is not None:
            own.setdefault(owner, []).append((start, end))
    scan = Scan.of(text)
    plain = not (scan.think or scan.analysis or scan.tool_results)
    missed = set(missing)
    parts: Labelled = []
    found: set[int] = set()
    holes: list[tuple[int, int]] = []
    unowned_roles: Labelled = []
    for s in spans:
        regions = own.get(s.message)
        if s.role == "assistant" and regions:
            after_tool = s.message > 0 and conversation[s.message - 1].role == "tool"
            turn = generated_turn(text, regions, s, att.cue, ends, scan, after_tool)
            holes.extend(turn.holes)
            s.gen_start, s.gen_end = turn.start, turn.end
            if turn.eot is not None:
                s.eot_start, s.eot_end = turn.eot
            # The content lies inside what the model writes (never in a later tool result).
            stop = turn.eot[0] if turn.eot is not None else turn.end
            if s.content_start < turn.start or s.content_end > stop:
                s.content_start = min(max(s.content_start, turn.start), stop)
                s.content_end = min(max(s.content_end, s.content_start), stop)
            message = conversation[s.message]
            if s.message in missed:
                if turn.end > turn.start:
                    found.add(s.message)
            elif plain and not message.extra:  # the common case: the content is all there is
                if s.content_end > s.content_start:
                    parts.append((s.content_start, s.content_end, "content"))
                continue
            parts.extend(turn_parts(text, turn, s, message, scan, s.message not in missed))
        elif s.content_end > s.content_start:
            parts.append((s.content_start, s.content_end, "content"))
    if spans and own and 0 not in missing:  # (an index loop owns nothing: nothing to go by)
        unowned_roles.extend(_injected_system(text, spans[0], ends, bos))
    if not plain:
        parts.sort()
    return parts, unowned_roles, holes, found


def _inside_own(
    regions: list[tuple[int, int, int | None]], starts: list[int], a: int, b: int, message: int
) -> bool:
    i = bisect_right(starts, a) - 1
    return i >= 0 and regions[i][2] == message and b <= regions[i][1]


def overlay(base: list[Piece], tops: list[Piece]) -> list[Piece]:
    """Paint `tops` (disjoint, any order) over the partition `base`; the result is a partition.

    Example: overlay([Piece(0, 10, 1, "turn")], [Piece(3, 5, 1, "content")])
             -> [Piece(0, 3, 1, "turn"), Piece(3, 5, 1, "content"), Piece(5, 10, 1, "turn")]
    """
    tops = sorted(t for t in tops if t[1] > t[0])
    out: list[Piece] = []
    ti = 0
    for piece in base:
        s, e, owner, part = piece
        while ti < len(tops) and tops[ti][1] <= s:
            ti += 1
        if ti == len(tops) or tops[ti][0] >= e:  # nothing painted over it: kept as it is
            out.append(piece)
            continue
        pos = s
        while pos < e:
            while ti < len(tops) and tops[ti][1] <= pos:
                ti += 1
            if ti < len(tops) and tops[ti][0] <= pos:
                end = min(tops[ti][1], e)
                out.append(Piece(pos, end, tops[ti][2], tops[ti][3]))
            else:
                end = min(tops[ti][0], e) if ti < len(tops) else e
                out.append(Piece(pos, end, owner, part))
            pos = end
    return out


def _tool_names(message: Message) -> list[str]:
    """Names of the functions an assistant message calls (OpenAI/HF `tool_calls` shapes)."""
    names = []
    for call in message.extra.get("tool_calls") or []:
        function = call.get("function", call) if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    return names


def _missing_finding(
    missing: list[int], spans: list[MessageSpan], conversation: Sequence[Message]
) -> Finding:
    which = ", ".join(f"messages[{k}] ({conversation[k].role})" for k in missing[:5])
    return Finding(
        code="content-not-found",
        severity="warning",
        message=(
            f"The template's output does not contain the content of {which} as "
            "given (nor stripped); their roles and labels may be incomplete. The "
            "template rewrites or drops message content."
        ),
        tokens=[],
    )
