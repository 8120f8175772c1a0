"""What a check sees: a token view (ids, trained flags, roles) plus whatever else is known.

Design concession: renderings and pre-tokenized rows are both reduced to one `TokenView`, so the
token-level checks (double BOS, untrained end-of-turn, trained prompt...) are written once; checks
that need text, spans or re-rendering read `ctx.rendering` and are skipped where it is None.
What depends only on the tokenizer and a marker's text is remembered per tokenizer across rows
and requests (`LintContext.shared`, keyed by everything else it depends on, bounded); the
questions at the end (`Check.when`) let a dataset row skip the checks it gives nothing to.

Example: ctx.shared(("image-token-id",), find) -> the same answer for every row of a tokenizer
"""

from __future__ import annotations

import weakref
from bisect import bisect_right
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

from app.chat.columns import TokenColumns
from app.chat.encoding import TokenizerInfo
from app.chat.messages import Message
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import IGNORE_INDEX, Finding, Rendering, Severity, Token
from app.lint.markers import (
    IdSearch,
    LeadIn,
    Markers,
    TokenIndex,
    Turns,
    markers_from_rendering,
    read_turns,
    token_bounds,
)
from app.lint.registry import CHECKS


@dataclass(slots=True)
class TokenView:
    """Per-token facts shared by renderings and pre-tokenized rows.

    `eots` holds the token index of every end-of-turn marker that closes a message (renderings) or
    of every end-of-turn id (pre-tokenized rows); `segments` the start of each packed sequence.
    """

    ids: Sequence[int]
    trained: list[bool]
    roles: list[str | None]
    eots: list[int]
    segments: list[int] = field(default_factory=lambda: [0])
    texts: Sequence[str] | None = None


def view_of_rendering(rendering: Rendering, index: TokenIndex | None = None) -> TokenView:
    """Reduce a Rendering to a TokenView (end-of-turn tokens located from the message spans);
    `index` is the rendering's TokenIndex where one is made already."""
    starts, ends = token_bounds(rendering) if index is None else (index.starts, index.ends)
    eots: list[int] = []
    size = len(starts)
    for span in rendering.spans:
        if (at := span.eot_start) is None:
            continue
        first = bisect_right(ends, at)
        if first < size and starts[first] <= at:
            eots.append(first)
    tokens = rendering.tokens
    if type(tokens) is TokenColumns:  # (no subclasses; isinstance with an ABC is slow)
        return TokenView(rendering.input_ids, tokens.trained, tokens.roles, eots, [0], tokens.texts)
    return TokenView(  # (each column read with one C-level map, not a loop per token)
        ids=rendering.input_ids,
        trained=list(map(IGNORE_INDEX.__ne__, rendering.labels)),
        roles=list(map(_ROLE, tokens)),
        eots=eots,
        texts=_Texts(tokens),
    )


_ROLE = attrgetter("role")


class _Texts(Sequence[str]):
    """The texts of Token records, read when asked (most lints never ask; a long
    conversation has tens of thousands)."""

    __slots__ = ("_tokens",)

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._tokens = tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [tok.text for tok in self._tokens[index]]
        return self._tokens[index].text


@dataclass(frozen=True)
class ModelView:
    """What a causal LM made of a rendering, for the model-backed checks (scope "model").

    `logprobs[i]` is log p(token i | the tokens before it), None for token 0; `stops` holds
    (first token, message, probability) of each trained end-of-turn marker; the thresholds come
    from the lint_min_stop_probability and lint_max_token_loss settings.
    """

    logprobs: Sequence[float | None]
    stops: Sequence[tuple[int, int, float]]
    min_stop_probability: float
    max_token_loss: float


# Answers shared across rows, per tokenizer (see `LintContext.shared`): by the tokenizer's id,
# with a weak reference that proves the id is still that tokenizer's and drops the answers
# when it goes (a WeakKeyDictionary would make a reference per question).
_SHARED: dict[int, tuple[weakref.ref[Any], dict[Hashable, Any]]] = {}
SHARED_MOST = 4096


def _shared_of(tokenizer: object) -> dict[Hashable, Any]:
    """The answers shared for `tokenizer` (a fresh dict, never kept, for one that cannot be
    weakly referenced)."""
    key = id(tokenizer)
    entry = _SHARED.get(key)
    if entry is not None and entry[0]() is tokenizer:
        return entry[1]
    answers: dict[Hashable, Any] = {}
    try:
        ref = weakref.ref(tokenizer, lambda _, key=key: _forget(key))  # type: ignore[misc]
    except TypeError:
        return answers
    _SHARED[key] = (ref, answers)
    return answers


def _forget(key: int) -> None:
    entry = _SHARED.get(key)
    if entry is not None and entry[0]() is None:
        del _SHARED[key]


# Renders a conversation again under the linted rendering's dialect, tokenizer and limits.
Renderer = Callable[[Sequence[Message], RenderSpec], Rendering]


@dataclass(slots=True)
class LintContext:
    """Everything a check may read. `rendering`/`conversation` are None for bare token rows."""

    view: TokenView
    facts: TokenizerInfo
    tokenizer: Tokenizer
    dialect: str | None
    train_on: str = "assistant"
    train_on_eot: bool = True
    rendering: Rendering | None = None
    conversation: Sequence[Message] | None = None
    spec: RenderSpec | None = None
    labels: Sequence[int] | None = None
    renderer: Renderer | None = None
    eot_ids: frozenset[int] = frozenset()
    deep: bool = False
    model: ModelView | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _index: TokenIndex | None = field(default=None, repr=False)
    _search: IdSearch | None = field(default=None, repr=False)
    _markers: Markers | None = field(default=None, repr=False)
    _turns: Turns | None = field(default=None, repr=False)
    _answers: dict[Hashable, Any] | None = field(default=None, repr=False)

    def rendered(self) -> Rendering:
        """The rendering, for the questions only renderings can answer."""
        if self.rendering is None:
            raise RuntimeError("this question needs a rendering, not a pre-tokenized row")
        return self.rendering

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` once per lint run; checks share what costs a render or a pass over tokens."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def shared(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """`make()` once per tokenizer and `key`, for every row and request linted with this
        tokenizer: for answers that depend on nothing but the tokenizer and what `key` holds
        (a marker's text, a token id), never on the row. Bounded: forgotten past
        `SHARED_MOST` keys per tokenizer."""
        answers = self._answers
        if answers is None:  # looked up once per row, however many checks ask
            answers = self._answers = _shared_of(self.tokenizer)
        try:
            return answers[key]
        except KeyError:
            if len(answers) >= SHARED_MOST:
                answers.clear()
            made = answers[key] = make()
            return made

    # The methods below are asked for many times per dataset row: each keeps its own slot.
    def index(self) -> TokenIndex:
        """Token positions by character offset (renderings only)."""
        if self._index is None:
            self._index = TokenIndex(self.rendered())
        return self._index

    def search(self) -> IdSearch:
        """The row's ids prepared for finding id sequences (markers, response templates)."""
        if self._search is None:
            self._search = IdSearch(self.view.ids)
        return self._search

    def markers(self) -> Markers:
        """The rendering's role markers and end-of-turn marker, computed once per rendering
        (the checks read `turns()`, which has all of it but the markers' ids)."""
        if self._markers is None:
            self._markers = markers_from_rendering(self.rendered(), self.index(), self.turns())
        return self._markers

    def turns(self) -> Turns:
        """Lead-ins, role markers and end-of-turn ids of the rendering (see `read_turns`)."""
        if self._turns is None:
            self._turns = read_turns(self.rendered(), self.index())
        return self._turns

    def best_lead_ins(self) -> dict[str, LeadIn]:
        """Each role's best lead-in (see `best_lead_ins`)."""
        return self.turns().best

    def lead_ins(self) -> list[LeadIn]:
        return self.turns().leads

    def tokens_in(self, start: int, end: int) -> list[int]:
        """Indices of tokens overlapping the character range [start, end)."""
        return list(self.index().overlapping(start, end))

    def finding(
        self, code: str, message: str, tokens: Sequence[int] = (), severity: Severity | None = None
    ) -> Finding:
        """A Finding for `code` with the registry's default severity unless one is given."""
        return Finding(
            code=code,
            severity=severity or CHECKS[code].severity,
            message=message,
            tokens=sorted(set(tokens)),
        )

    def rerender(self, conversation: Sequence[Message], **changes: Any) -> Rendering:
        """Render `conversation` again with the same dialect and tokenizer, the spec changed."""
        if self.renderer is None or self.spec is None:
            raise RuntimeError("re-rendering needs a renderer and a render spec")
        return self.renderer(conversation, replace(self.spec, **changes))

    def token_text(self, index: int) -> str:
        """The text of token `index` (decoded on demand for pre-tokenized rows)."""
        if self.view.texts is not None:
            return self.view.texts[index]
        return self.tokenizer.decode([self.view.ids[index]])


# Questions for `Check.when` (app.lint.registry), each asked once per row however many checks
# share it: False means those checks find nothing in the row, so they are not run.


def holds_more_than_text(ctx: LintContext) -> bool:
    """Whether a message has fields besides its role and content (tool calls, reasoning...),
    is a tool result, writes a think tag or is empty: all that the tool-call, reasoning and
    empty-answer checks look at."""
    return any(
        m.extra or m.role == "tool" or "<think>" in m.content or not m.content.strip()
        for m in ctx.conversation or ()
    )


def renders_think(ctx: LintContext) -> bool:
    """Whether the rendered text holds a think tag (`<think>`, `</think>`) or a harmony
    channel (`<|channel|>`)."""
    text = ctx.rendering.text if ctx.rendering is not None else ""
    return "think>" in text or "<|channel|>" in text


def normalizes(ctx: LintContext) -> bool:
    """Whether the tokenizer's normalizer applies a Unicode normal form."""
    return bool(ctx.facts.unicode_forms)


def has_render_flags(ctx: LintContext) -> bool:
    """Whether the rendering says it was tagged ({% generation %}) or counted images or audio."""
    meta = ctx.rendering.meta if ctx.rendering is not None else {}
    return "tagged" in meta or "images" in meta or "audio" in meta


def engine_spoke(ctx: LintContext) -> bool:
    """Whether the engine reported findings of its own or cut the rendering at max_length."""
    rendering = ctx.rendering
    return rendering is not None and bool(rendering.findings or rendering.truncated_tokens)


def has_tools(ctx: LintContext) -> bool:
    """Whether the render was given a tools list."""
    return ctx.spec is not None and bool(ctx.spec.tools)
