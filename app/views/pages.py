"""Top-level HTML pages."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.views.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """The playground page."""
    return templates.TemplateResponse(request, "index.html", {})
