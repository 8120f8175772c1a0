"""Lints for already-tokenized rows: which role each token has and which tokens end a turn,
without a rendering of the row's own.

Example: TokenRowLinter(renderer).lint(parse_token_row({"input_ids": [...], "labels": [...]}))
         -> (TokenView(ids, trained, roles, eots, [0]), [Finding("labels-shifted", ...)])

Design concession: roles come from re-rendering the row's `messages` when that gives the same
ids, else from the dialect's header markers, probed once per inspection (a row without messages
and a dialect without markers gets no roles, and the role-based checks then say nothing).
"""

from __future__ import annotations

from app.chat.encoding import tokenizer_info
from app.chat.messages import parse_row
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import IGNORE_INDEX, Finding, Rendering, Token
from app.inspect.renderer import RowRenderer
from app.inspect.rows import TokenRow
from app.lint import lint_tokens
from app.lint.context import TokenView, view_of_rendering
from app.lint.markers import Markers, probe_markers, roles_by_markers


class TokenRowLinter:
    """Token views and findings of pre-tokenized rows under one inspection's renderer."""

    def __init__(self, renderer: RowRenderer) -> None:
        self.renderer = renderer
        self._probed = False
        self._markers: Markers | None = None  # the dialect's, once probed (None: it has none)

    def lint(self, parsed: TokenRow) -> tuple[TokenView, list[Finding]]:
        """The row's token view (roles, end-of-turns, segments) and its findings."""
        view = self._view(parsed)
        eot_ids = self._eot_ids()
        if not view.eots:
            view.eots = [i for i, tid in enumerate(parsed.input_ids) if tid in eot_ids]
        findings = lint_tokens(
            view,
            tokenizer=self.renderer.tokenizer,
            labels=parsed.labels,
            eot_ids=eot_ids,
            dialect=self.renderer.spec.dialect,
            train_on=self.renderer.spec.train_on,
        )
        return view, findings

    def _view(self, parsed: TokenRow) -> TokenView:
        """Roles from re-rendering the row's messages when they give the same ids, else from
        the dialect's markers; end-of-turn tokens likewise."""
        trained = [label != IGNORE_INDEX for label in parsed.labels]
        if parsed.messages:
            rendering = self.renderer.render(parse_row({"messages": parsed.messages}))
            if list(rendering.input_ids) == parsed.input_ids:
                rendered = view_of_rendering(rendering)
                return TokenView(
                    parsed.input_ids, trained, rendered.roles, rendered.eots, parsed.segments()
                )
        markers = self._probe()
        roles: list[str | None] = (
            roles_by_markers(parsed.input_ids, markers.headers)
            if markers
            else [None] * len(parsed.input_ids)
        )
        return TokenView(parsed.input_ids, trained, roles, [], parsed.segments())

    def _probe(self) -> Markers | None:
        if not self._probed:
            r = self.renderer
            self._markers = probe_markers(r.tokenizer, r.spec.dialect, r.spec, r.rerender)
            self._probed = True
        return self._markers

    def _eot_ids(self) -> frozenset[int]:
        markers = self._probe()
        eos = tokenizer_info(self.renderer.tokenizer).eos_id
        found = set(markers.eot_ids) if markers else set()
        return frozenset(found | ({eos} if eos is not None else set()))


def token_rendering(
    parsed: TokenRow, view: TokenView, tokenizer: Tokenizer, dialect: str
) -> Rendering:
    """A Rendering built from a pre-tokenized row, so the page can show it as chips.

    Design concession: each token's text is its own decoded piece, so the texts join to a
    readable string that may differ from a whole decode where characters span several tokens.
    """
    facts = tokenizer_info(tokenizer)
    tokens, pos = [], 0
    for i, (tid, piece) in enumerate(
        zip(parsed.input_ids, tokenizer.batch_decode([[t] for t in parsed.input_ids]), strict=True)
    ):
        tokens.append(
            Token(
                i,
                tid,
                piece,
                view.roles[i],
                None,
                tid in facts.special_ids,
                view.trained[i],
                pos,
                pos + len(piece),
            )
        )
        pos += len(piece)
    return Rendering(
        text="".join(t.text for t in tokens),
        input_ids=list(parsed.input_ids),
        labels=list(parsed.labels),
        attention_mask=parsed.attention_mask or [1] * len(tokens),
        tokens=tokens,
        spans=[],
        dialect=dialect,
    )
