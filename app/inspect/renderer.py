"""The inspection's dialect, tokenizer, spec and settings bound once: every render and lint of
a row goes through this, so no row is ever rendered under other options than the others.

Example: RowRenderer.of(options).render(parse_row({"messages": [...]})) -> Rendering(...)

Design concession: the dialect is looked up once per inspection (not per row) and kept as the
object the engine takes; `spec.dialect` remains the name the token-level lints read.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any

from app.chat.layout import Dialect
from app.chat.messages import Message
from app.chat.render import Renderings, render, start_many
from app.chat.spec import RenderSpec, row_spec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Rendering
from app.dialects.registry import get_dialect
from app.inspect.options import InspectOptions
from app.lint import context_for_rendering
from app.lint.context import LintContext
from app.settings import Settings


@dataclass(frozen=True)
class RowRenderer:
    """Render and lint conversations under one inspection's options."""

    dialect: Dialect
    tokenizer: Tokenizer
    spec: RenderSpec
    settings: Settings

    @classmethod
    def of(cls, options: InspectOptions) -> RowRenderer:
        return cls(
            get_dialect(options.spec.dialect), options.tokenizer, options.spec, options.settings
        )

    def for_row(self, row: Any) -> RowRenderer:
        """This renderer, or one under the row's own tools and template variables."""
        spec = row_spec(self.spec, row)
        return self if spec is self.spec else replace(self, spec=spec)

    def render(self, conversation: Sequence[Message]) -> Rendering:
        """One conversation under the inspection's dialect, tokenizer, spec and limits."""
        return render(conversation, self.dialect, self.tokenizer, self.spec, self.settings)

    def rerender(self, conversation: Sequence[Message], spec: RenderSpec) -> Rendering:
        """`render` under another spec (the lints' probes)."""
        return render(conversation, self.dialect, self.tokenizer, spec, self.settings)

    def start(
        self, conversations: Sequence[Sequence[Message]], pool: Executor | None
    ) -> Renderings:
        """`start_many`: the templates rendered now, their tokens made on `pool`."""
        return start_many(
            conversations, self.dialect, self.tokenizer, self.spec, self.settings, pool
        )

    def context(self, rendering: Rendering, conversation: Sequence[Message]) -> LintContext:
        """What the checks of `rendering` see; the caller chooses which checks run."""
        return context_for_rendering(
            rendering,
            conversation=conversation,
            tokenizer=self.tokenizer,
            dialect=self.dialect,
            spec=self.spec,
            settings=self.settings,
        )
