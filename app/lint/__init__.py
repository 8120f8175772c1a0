"""Mask lint: find masking mistakes in a rendering or a pre-tokenized row.

`lint_rendering` is what /api/render and /api/lint call; `lint_tokens` is what dataset inspection
calls on pre-tokenized rows. Every check lives in a registry (`CHECKS`), one function per code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from app.chat.collector import collector_paused
from app.chat.encoding import tokenizer_info
from app.chat.layout import Dialect
from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import SEVERITY_RANK, Finding, Rendering

# Importing the check modules registers their checks, in this order.
from app.lint import (  # noqa: F401
    mask_checks,
    media_checks,
    model_checks,
    preference_checks,
    render_checks,
    template_checks,
    token_checks,
    tokenized_checks,
    tool_checks,
    turn_checks,
)
from app.lint.context import LintContext, TokenView, view_of_rendering
from app.lint.markers import TokenIndex, token_bounds
from app.lint.registry import CHECKS, Check, Scope, checks_for, codes
from app.settings import Settings

__all__ = [
    "CHECKS",
    "Check",
    "LintContext",
    "TokenView",
    "codes",
    "context_for_rendering",
    "lint_rendering",
    "lint_tokens",
    "run_checks",
]

log = logging.getLogger(__name__)


def run_checks(
    ctx: LintContext, scopes: Sequence[Scope], extra: Iterable[Finding] = ()
) -> list[Finding]:
    """Run every registered check of `scopes`; a crashing check is logged, never fatal."""
    found: dict[tuple[str, tuple[int, ...]], Finding] = {}
    ctx.deep = "deep" in scopes
    for finding in extra:
        found.setdefault((finding.code, tuple(finding.tokens)), finding)
    asked: dict[Callable[[Any], bool], bool] = {}  # each `when` question, asked once per row
    for item in checks_for(*scopes):
        try:
            if (when := item.when) is not None:
                if (holds := asked.get(when)) is None:
                    holds = asked[when] = when(ctx)
                if not holds:
                    continue
            for finding in item.func(ctx):
                found.setdefault((finding.code, tuple(finding.tokens)), finding)
        except Exception:  # a broken check must not break rendering
            log.exception("lint check %s failed", item.code)
    if len(found) < 2:
        return list(found.values())
    order = _order()
    return sorted(
        found.values(), key=lambda f: (SEVERITY_RANK[f.severity], order.get(f.code, len(order)))
    )


def _order() -> dict[str, int]:
    """Each code's place in the registry (remembered: asked for every row with findings)."""
    if len(_ORDER) != len(CHECKS):
        _ORDER.clear()
        _ORDER.update((code, k) for k, code in enumerate(CHECKS))
    return _ORDER


_ORDER: dict[str, int] = {}


def lint_rendering(
    rendering: Rendering,
    *,
    conversation: Sequence[Message],
    tokenizer: Tokenizer,
    dialect: Dialect,
    spec: RenderSpec,
    settings: Settings,
    deep: bool = True,
) -> list[Finding]:
    """All findings for one rendering, the engine's own findings (boundary-merge) included.

    `deep=False` skips the checks that re-render the conversation (dataset rows use probes).
    """
    ctx = context_for_rendering(
        rendering,
        conversation=conversation,
        tokenizer=tokenizer,
        dialect=dialect,
        spec=spec,
        settings=settings,
    )
    scopes: tuple[Scope, ...] = ("tokens", "rendering", "deep") if deep else ("tokens", "rendering")
    with collector_paused():  # the checks' short-lived lists would trigger collections
        return run_checks(ctx, scopes, extra=rendering.findings)


def context_for_rendering(
    rendering: Rendering,
    *,
    conversation: Sequence[Message],
    tokenizer: Tokenizer,
    dialect: Dialect,
    spec: RenderSpec,
    settings: Settings,
) -> LintContext:
    """What the checks of one rendering see; re-renders go through the same dialect,
    tokenizer and limits."""

    def renderer(again: Sequence[Message], changed: RenderSpec) -> Rendering:
        # Token columns: the checks read ids, spans and labels, and walk few tokens.
        return render(again, dialect, tokenizer, changed, settings, columns=True)

    index = TokenIndex.of_bounds(*token_bounds(rendering))  # made once, for the view and checks
    view = view_of_rendering(rendering, index)
    facts = tokenizer_info(tokenizer)
    eot_ids = frozenset(map(view.ids.__getitem__, view.eots))
    return LintContext(
        view=view,
        facts=facts,
        tokenizer=tokenizer,
        dialect=dialect.name,
        train_on=spec.train_on,
        train_on_eot=spec.train_on_eot,
        rendering=rendering,
        conversation=conversation,
        spec=spec,
        renderer=renderer,
        eot_ids=eot_ids,
        _index=index,
    )


def lint_tokens(
    view: TokenView,
    *,
    tokenizer: Tokenizer,
    labels: Sequence[int],
    eot_ids: frozenset[int],
    dialect: str | None = None,
    train_on: str = "assistant",
) -> list[Finding]:
    """Findings for a pre-tokenized row (its own labels), token-level and label checks only."""
    ctx = LintContext(
        view=view,
        facts=tokenizer_info(tokenizer),
        tokenizer=tokenizer,
        dialect=dialect,
        train_on=train_on,
        labels=labels,
        eot_ids=eot_ids,
    )
    return run_checks(ctx, ("tokens", "tokenized"))
