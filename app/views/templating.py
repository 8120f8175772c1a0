"""The one Jinja2Templates instance for HTML pages (autoescape on: every template is *.html).

`render_block` renders a single block of a page template, so an htmx fragment and the full page
come from the same source and cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.views.forms import editor_turn

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
# The conversation editor shows each message through its fields (tool calls, reasoning...).
templates.env.filters["editor_turn"] = editor_turn


def render_block(
    request: Request,
    name: str,
    block: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render only `block` of template `name`, with the same context the full page would get."""
    template = templates.get_template(name)
    ctx = template.new_context({"request": request, **context})
    html = "".join(template.blocks[block](ctx))
    return HTMLResponse(html, status_code=status_code, headers=headers)
