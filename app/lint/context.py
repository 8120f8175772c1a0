"""What a check sees: a token view (ids, trained flags, roles) plus whatever else is known.

Design concession: renderings and pre-tokenized rows are both reduced to one `TokenView`, so the
token-level checks (double BOS, untrained end-of-turn, trained prompt...) are written once; checks
that need text, spans or re-rendering read `ctx.rendering` and are skipped where it is None.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.chat.render import TokenColumns
from app.chat.tokens import IGNORE_INDEX, Finding, Rendering, Severity
from app.lint.facts import TokenizerFacts
from app.lint.registry import CHECKS


@dataclass
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


def view_of_rendering(rendering: Rendering) -> TokenView:
    """Reduce a Rendering to a TokenView (end-of-turn tokens located from the message spans)."""
    starts, ends = token_bounds(rendering)
    eots: list[int] = []
    for span in rendering.spans:
        if span.eot_start is None:
            continue
        index = bisect_right(ends, span.eot_start)
        if index < len(starts) and starts[index] <= span.eot_start:
            eots.append(index)
    tokens = rendering.tokens
    columns = isinstance(tokens, TokenColumns)
    return TokenView(
        ids=rendering.input_ids,
        trained=(tokens.trained if columns
                 else [label != IGNORE_INDEX for label in rendering.labels]),
        roles=tokens.roles if columns else [tok.role for tok in tokens],
        eots=eots,
        texts=tokens.texts if columns else [tok.text for tok in tokens],
    )


def token_bounds(rendering: Rendering) -> tuple[list[int], list[int]]:
    """Every token's start and end character offsets, read without making Token records."""
    tokens = rendering.tokens
    if isinstance(tokens, TokenColumns):
        return tokens.starts, tokens.ends
    return [tok.start for tok in tokens], [tok.end for tok in tokens]


Renderer = Callable[..., Rendering]


@dataclass
class LintContext:
    """Everything a check may read. `rendering`/`conversation` are None for bare token rows."""

    view: TokenView
    facts: TokenizerFacts
    tokenizer: Any
    dialect: str | None
    train_on: str = "assistant"
    train_on_eot: bool = True
    rendering: Rendering | None = None
    conversation: list[Any] | None = None
    options: Any = None
    labels: Sequence[int] | None = None
    renderer: Renderer | None = None
    eot_ids: frozenset[int] = frozenset()
    deep: bool = False
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` once per lint run; checks share what costs a render or a pass over tokens."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def index(self) -> Any:
        """Token positions by character offset (renderings only)."""
        from app.lint.markers import TokenIndex

        return self.cached("index", lambda: TokenIndex(self.rendering))

    def search(self) -> Any:
        """The row's ids prepared for finding id sequences (markers, response templates)."""
        from app.lint.markers import IdSearch

        return self.cached("search", lambda: IdSearch(self.view.ids))

    def markers(self) -> Any:
        """The rendering's role markers and end-of-turn marker, computed once per rendering."""
        from app.lint.markers import markers_from_rendering

        return self.cached("markers", lambda: markers_from_rendering(
            self.rendering, self.index(), self.lead_ins()))

    def lead_ins(self) -> list[Any]:
        from app.lint.markers import lead_ins

        return self.cached("lead_ins", lambda: lead_ins(self.rendering))

    def tokens_in(self, start: int, end: int) -> list[int]:
        """Indices of tokens overlapping the character range [start, end)."""
        return list(self.index().overlapping(start, end))

    def finding(self, code: str, message: str, tokens: Sequence[int] = (),
                severity: Severity | None = None) -> Finding:
        """A Finding for `code` with the registry's default severity unless one is given."""
        return Finding(code=code, severity=severity or CHECKS[code].severity, message=message,
                       tokens=sorted(set(tokens)))

    def rerender(self, conversation: list[Any], **changes: Any) -> Rendering:
        """Render `conversation` again with the same dialect and tokenizer, options changed."""
        if self.renderer is None or self.options is None:
            raise RuntimeError("re-rendering needs a renderer and render options")
        options = replace(self.options, **changes)
        return self.renderer(conversation, self.dialect, self.tokenizer, options)

    def token_text(self, index: int) -> str:
        """The text of token `index` (decoded on demand for pre-tokenized rows)."""
        if self.view.texts is not None:
            return self.view.texts[index]
        return self.tokenizer.decode([self.view.ids[index]])
