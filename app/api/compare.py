"""POST /api/compare: one conversation under several tokenizer+dialect pairs, in order.

Design concession: targets render one after another in the request's thread; a failing target
becomes an error entry in its slot (same shape as every JSON error) instead of failing the rest.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.deps import SettingsDep
from app.api.render import RenderRequest, render_request, rendering_json
from app.chat.tokens import Finding, Rendering
from app.errors import LimitError, MaskscopeError
from app.settings import Settings

router = APIRouter(prefix="/api", tags=["render"])
logger = logging.getLogger(__name__)

Outcome = tuple[Rendering, list[Finding]] | MaskscopeError


class CompareTarget(BaseModel):
    # Unknown fields (e.g. trust_remote_code) are refused by name, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    tokenizer: str = Field(..., description="Bundled name, local folder, or Hub id.")
    dialect: str = Field(..., description="Built-in slug, 'tokenizer' or 'custom'.")
    template: str | None = Field(None, description="Jinja source when dialect is 'custom'.")


class CompareRequest(RenderRequest):
    """The /api/render fields (tokenizer/dialect come from each target) plus the targets."""

    targets: list[CompareTarget] = Field(
        ..., min_length=1, description="Tokenizer+dialect pairs, one per column."
    )


def target_request(body: CompareRequest, target: CompareTarget) -> RenderRequest:
    """The /api/render body for one column; a target without a template uses the shared one."""
    fields = body.model_dump(exclude={"targets"})
    fields.update(
        tokenizer=target.tokenizer,
        dialect=target.dialect,
        template=target.template if target.template is not None else body.template,
    )
    return RenderRequest(**fields)


def _render_target(body: RenderRequest, settings: Settings, index: int) -> Outcome:
    try:
        return render_request(body, settings)
    except MaskscopeError as exc:
        return exc
    except Exception as exc:  # one broken column must not take the others down
        logger.exception("compare target %d (%s/%s) failed", index, body.tokenizer, body.dialect)
        error = MaskscopeError(
            f"Rendering under {body.tokenizer}/{body.dialect} failed "
            f"unexpectedly ({type(exc).__name__}).",
            field=f"targets[{index}]",
        )
        error.status, error.code = 500, "internal_error"
        return error


def compare(body: CompareRequest, settings: Settings) -> list[Outcome]:
    """Render `body` under every target, in order.

    Example: targets [smollm2/chatml, llama3/llama3] -> [(Rendering, [...]), (Rendering, [...])]
    """
    if len(body.targets) > settings.max_compare_targets:
        raise LimitError(
            f"{len(body.targets)} targets asked for; the limit is "
            f"{settings.max_compare_targets} (max_compare_targets setting).",
            field="targets",
            setting="max_compare_targets",
        )
    return [
        _render_target(target_request(body, t), settings, i) for i, t in enumerate(body.targets)
    ]


@router.post("/compare")
def post_compare(body: CompareRequest, settings: SettingsDep) -> dict[str, Any]:
    """Render one conversation under each target; failing targets give error entries."""
    results = []
    for outcome in compare(body, settings):
        if isinstance(outcome, MaskscopeError):
            results.append(outcome.payload())
        else:
            results.append(rendering_json(*outcome))
    return {"results": results}
