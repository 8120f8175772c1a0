"""Preference rows: the prompt with each answer rendered (or tokenized) as TRL's DPO does, each
side linted alone, then the pair compared (app.lint.preference_checks).

Example: PairEvaluator(renderer).evaluate({"prompt": [u], "chosen": [a1], "rejected": [a2]},
                                          deep=False)
         -> (RowStats(tokens=<both sides>, ...), [Finding("preference-...", ...)], '{...}\\n')

Design concession: a side's findings carry its name in the message ("chosen: ...") and their
token indices point into that side; the summary counts a pair as one row with both sides'
tokens. The export line is TRL's DPO shape: prompt_ids, chosen_ids, rejected_ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.chat.encoding import tokenizer_info
from app.chat.messages import parse_row
from app.chat.tokens import Finding, Rendering
from app.inspect.renderer import RowRenderer
from app.inspect.rows import TokenRow
from app.inspect.shapes import (
    Preference,
    common_prefix_length,
    completion_conversation,
    plain_completion,
    preference_of,
)
from app.inspect.summary import RowStats, row_stats, token_parts
from app.inspect.tokenized import TokenRowLinter, token_rendering
from app.lint import run_checks
from app.lint.context import TokenView
from app.lint.preference_checks import PairContext, Side
from app.lint.registry import Scope

SYSTEM_ROLES = ("system", "developer")


@dataclass
class Made:
    """One side made: its rendering, view, own findings and size."""

    name: str
    rendering: Rendering
    view: TokenView
    findings: list[Finding]
    tokens: int
    truncated: int


class PairEvaluator:
    """Evaluate preference rows under one inspection's renderer."""

    def __init__(self, renderer: RowRenderer) -> None:
        self.renderer = renderer
        self.tokens = TokenRowLinter(renderer)

    def evaluate(self, row: dict[str, Any], deep: bool) -> tuple[RowStats, list[Finding], str]:
        """Both sides' counts, every finding (each side's, named, then the pair's), and the
        export line."""
        made, prompt_ids = self._make(row, deep)
        pair = self._pair_findings(made, prompt_ids)
        first, second = made
        stats = row_stats(first.view, first.tokens, "preference", _parts(first)).plus(
            row_stats(second.view, second.tokens, "preference", _parts(second))
        )
        findings = [*_named(first), *_named(second), *pair]
        return stats, findings, _export(made, prompt_ids)

    def drill(self, row: dict[str, Any]) -> list[tuple[str, Rendering, list[Finding]]]:
        """The chosen and the rejected side as renderings, the pair's findings with chosen."""
        made, prompt_ids = self._make(row, deep=True)
        pair = self._pair_findings(made, prompt_ids)
        first, second = made
        return [
            (first.name, first.rendering, [*first.findings, *pair]),
            (second.name, second.rendering, second.findings),
        ]

    def _make(self, row: dict[str, Any], deep: bool) -> tuple[tuple[Made, Made], list[int] | None]:
        pref = preference_of(row)
        if pref.conversational:
            return self._conversational(row, pref, deep)
        return self._plain(pref)

    def _conversational(
        self, row: dict[str, Any], pref: Preference, deep: bool
    ) -> tuple[tuple[Made, Made], list[int] | None]:
        renderer = self.renderer.for_row(row)
        train_on = renderer.spec.train_on
        made = []
        for name, answer in (("chosen", pref.chosen), ("rejected", pref.rejected)):
            conversation = parse_row(
                completion_conversation(row, train_on, prompt=pref.prompt, completion=answer)
            )
            rendering = renderer.render(conversation)
            ctx = renderer.context(rendering, conversation)
            scopes: tuple[Scope, ...] = (
                ("tokens", "rendering", "deep") if deep else ("tokens", "rendering")
            )
            findings = run_checks(ctx, scopes, extra=rendering.findings)
            made.append(
                Made(
                    name,
                    rendering,
                    ctx.view,
                    findings,
                    len(rendering.input_ids),
                    rendering.truncated_tokens,
                )
            )
        prompt_ids = None
        if pref.prompt:
            spec = replace(renderer.spec, add_generation_prompt=True, max_length=None)
            prompt = renderer.rerender(parse_row({"messages": pref.prompt}), spec)
            prompt_ids = list(prompt.input_ids)
        return (made[0], made[1]), prompt_ids

    def _plain(self, pref: Preference) -> tuple[tuple[Made, Made], list[int] | None]:
        r = self.renderer
        made = []
        prompt_ids: list[int] = []
        for name, answer in (("chosen", pref.chosen), ("rejected", pref.rejected)):
            plain = plain_completion(r.tokenizer, pref.prompt, answer)
            prompt_ids = plain.prompt_ids
            ids, labels = plain.input_ids, plain.labels
            limit = r.spec.max_length
            cut = max(0, len(ids) - limit) if limit is not None else 0
            if cut:
                ids, labels = ids[:limit], labels[:limit]
            parsed = TokenRow(ids, labels, [1] * len(ids), None, None)
            view, findings = self.tokens.lint(parsed)
            rendering = token_rendering(parsed, view, r.tokenizer, r.spec.dialect)
            made.append(Made(name, rendering, view, findings, len(ids), cut))
        return (made[0], made[1]), prompt_ids

    def _pair_findings(
        self, made: tuple[Made, Made], prompt_ids: list[int] | None
    ) -> list[Finding]:
        r = self.renderer
        facts = tokenizer_info(r.tokenizer)
        sides = [_side(m, prompt_ids) for m in made]
        ctx = PairContext(
            chosen=sides[0],
            rejected=sides[1],
            prompt_ids=prompt_ids,
            bos_id=facts.bos_id,
            eos_id=facts.eos_id,
            max_length=r.spec.max_length,
            decode=r.tokenizer.decode,
        )
        return run_checks(ctx, ("preference",))  # type: ignore[arg-type]


def _side(made: Made, prompt_ids: list[int] | None) -> Side:
    view = made.view
    if prompt_ids:
        start = common_prefix_length(prompt_ids, view.ids)
    else:  # no prompt given: the answer starts at the first trained token
        start = next((i for i, t in enumerate(view.trained) if t), len(view.ids))
    texts = view.texts
    system = "".join(
        texts[i] if texts is not None else str(view.ids[i])
        for i, role in enumerate(view.roles)
        if role in SYSTEM_ROLES
    )
    return Side(
        made.name,
        view.ids,
        view.trained,
        view.roles,
        start,
        tuple(view.eots),
        system,
        made.truncated,
    )


def _parts(made: Made) -> Sequence[str]:
    return token_parts(made.rendering)


def _named(made: Made) -> list[Finding]:
    return [replace(f, message=f"{made.name}: {f.message}") for f in made.findings]


def _export(made: tuple[Made, Made], prompt_ids: list[int] | None) -> str:
    """TRL's DPO columns: the shared prompt ids, then each answer's ids."""
    first, second = (list(m.rendering.input_ids) for m in made)
    shared = common_prefix_length(first, second)
    if prompt_ids:
        shared = min(
            common_prefix_length(prompt_ids, first), common_prefix_length(prompt_ids, second)
        )
    return (
        f'{{"prompt_ids": {first[:shared]}, "chosen_ids": {first[shared:]}, '
        f'"rejected_ids": {second[shared:]}}}\n'
    )
