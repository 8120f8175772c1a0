"""A real uvicorn on a free loopback port and Debian's Chromium driven by Playwright
(tests/helpers/e2e.py says where both come from)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.e2e import CHROMIUM, CHROMIUM_ARGS, uvicorn_server


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Base URL of a real uvicorn serving app.main:app."""
    with uvicorn_server({"PYTHONUNBUFFERED": "1"}) as (url, _process):
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page at 1280 px; fails the test on any JavaScript error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], errors
