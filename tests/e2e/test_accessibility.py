"""Every page checked by axe-core (the pinned npm asset, injected by the test) at 1280 px and
420 px, light and dark: no serious or critical violation, one h1, a skip link as the first Tab
stop, results announced in a live region, and no sideways page scroll on a phone."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from app.settings import Settings
from tests.helpers.assets import require_asset
from tests.helpers.e2e import ARTIFACTS

pytestmark = pytest.mark.e2e

PAGES = {
    "job": None,  # a job page: its path comes from the job_path fixture
    "playground": "/",
    "compare": "/compare",
    "batch": "/batch",
    "inspect": "/inspect",
    "jobs": "/jobs",
}
WIDTHS = (1280, 420)
SCHEMES = ("light", "dark")
AXE = Settings.from_env().assets_dir / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def job_path(server) -> Iterator[str]:
    """A job page to check: a one-step job submitted and cancelled at once (no training here),
    deleted afterwards."""
    spec = {
        "model": "smollm2",
        "data": {"dataset": "demo"},
        "steps": 1,
        "batch_size": 1,
        "max_length": 32,
        "compare_baseline": False,
    }
    origin = {"Origin": server}
    job = httpx.post(f"{server}/api/jobs", json=spec, headers=origin, timeout=60)
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    httpx.post(f"{server}/api/jobs/{job_id}/cancel", headers=origin, timeout=60)
    yield f"/jobs/{job_id}"
    for _ in range(60):  # a job that had started stops at its next step; then it can go
        if httpx.delete(f"{server}/api/jobs/{job_id}", headers=origin).status_code != 409:
            break
        time.sleep(1)


@pytest.fixture(scope="module")
def axe_source() -> str:
    require_asset(AXE, "axe-core")
    return AXE.read_text(encoding="utf-8")


def open_page(browser, server, path: str, width: int, scheme: str):
    # The app's CSP allows only its own scripts; the checker is the test's, so it bypasses it.
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        base_url=server,
        color_scheme=scheme,
        bypass_csp=True,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path)
    page.wait_for_load_state("networkidle")
    return context, page, errors


def serious(page, axe_source: str) -> list[str]:
    page.add_script_tag(content=axe_source)
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3)"
        ".map(n => n.target.join(' ') + ': ' + (n.failureSummary || '').split('\\n')[1])}))"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['nodes']}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_no_serious_accessibility_violation(
    request, browser, server, axe_source, name, width, scheme
):
    path = PAGES[name] or request.getfixturevalue("job_path")
    context, page, errors = open_page(browser, server, path, width, scheme)
    try:
        expect(page.locator("h1")).to_have_count(1)
        page.keyboard.press("Tab")
        expect(page.locator(":focus")).to_have_text("Skip to content")
        page.screenshot(path=str(ARTIFACTS / f"a11y-{name}-{width}-{scheme}.png"), full_page=True)
        assert serious(page, axe_source) == []
        sideways = page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert sideways <= 0, f"{name} at {width} px scrolls sideways by {sideways} px"
        assert errors == []
    finally:
        context.close()


def test_skip_link_jumps_over_the_editor_to_the_tokens(page):
    page.goto("/")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    link = page.locator(":focus")
    expect(link).to_have_text("Skip to the tokens")
    link.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#result') !== null")


def test_a_rerender_is_announced_in_a_live_region(page):
    page.goto("/")
    page.locator("select[name=train_on]").select_option("all")
    live = page.locator("[data-announce='#result']")
    expect(live).to_have_attribute("role", "status")
    expect(live).to_contain_text(" tokens, ")
    tokens = page.locator("#result [data-stat=tokens]").inner_text()
    trained = page.locator("#result [data-stat=trained]").inner_text()
    expect(live).to_have_text(f"{tokens} tokens, {trained} trained.")
