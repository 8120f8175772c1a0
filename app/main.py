"""Build the ASGI app: settings, error handlers, routers, static files. Nothing else lives here."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.api import routers as api_routers
from app.lifespan import lifespan
from app.middleware import BodyLimitMiddleware, PoolBorrowerMiddleware
from app.settings import Settings
from app.views import STATIC_DIR
from app.views import routers as view_routers
from app.views.errors import install_error_handlers
from app.views.vendor import vendor_files
from app.web_security import (
    HostMiddleware,
    OriginMiddleware,
    SecurityHeadersMiddleware,
    TokenMiddleware,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    # No /docs or /redoc: FastAPI loads them from a CDN, which the CSP refuses; /openapi.json stays.
    app = FastAPI(
        title="Maskscope", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(PoolBorrowerMiddleware)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(OriginMiddleware)
    app.add_middleware(TokenMiddleware, settings=settings)
    app.add_middleware(HostMiddleware, settings=settings)
    app.add_middleware(SecurityHeadersMiddleware)
    for router in (*api_routers, *view_routers):
        app.include_router(router)
    app.mount("/static/vendor", vendor_files(settings), name="vendor")
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app


app = create_app()
