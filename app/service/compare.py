"""One conversation under several tokenizer+dialect pairs, in order: /api/compare and the
compare page.

Example: targets [smollm2/chatml, llama3/llama3] -> [(Rendered, [...]), (Rendered, [...])]

Design concession: targets render one after another in the caller's thread; a failing target
becomes an error in its slot (the same error every JSON surface shows) instead of failing the
rest.
"""

from __future__ import annotations

import logging

from app.chat.tokens import Finding
from app.errors import LimitError, MaskscopeError
from app.service.render import Rendered, render_and_lint
from app.service.requests import CompareRequest
from app.settings import Settings

logger = logging.getLogger(__name__)

Outcome = tuple[Rendered, list[Finding]] | MaskscopeError


def compare(body: CompareRequest, settings: Settings) -> list[Outcome]:
    """Render `body`'s conversation under every target, in order."""
    if len(body.targets) > settings.max_compare_targets:
        raise LimitError(
            f"{len(body.targets)} targets asked for; the limit is "
            f"{settings.max_compare_targets} (max_compare_targets setting).",
            field="targets",
            setting="max_compare_targets",
        )
    return [_column(body, index, settings) for index in range(len(body.targets))]


def _column(body: CompareRequest, index: int, settings: Settings) -> Outcome:
    spec = body.target_spec(body.targets[index])
    try:
        return render_and_lint(body.messages, spec, settings)
    except MaskscopeError as exc:
        return exc
    except Exception as exc:  # one broken column must not take the others down
        logger.exception("compare target %d (%s/%s) failed", index, spec.tokenizer, spec.dialect)
        error = MaskscopeError(
            f"Rendering under {spec.tokenizer}/{spec.dialect} failed "
            f"unexpectedly ({type(exc).__name__}).",
            field=f"targets[{index}]",
        )
        error.status, error.code = 500, "internal_error"
        return error
