"""The jobs page in a real browser: submit from the form, watch the curve grow live, see samples."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from app.settings import Settings
from tests.helpers.assets import require_asset
from tests.helpers.e2e import ARTIFACTS, uvicorn_server
from tests.train.tiny import SMOLLM2, save_tiny_model

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def jobs_server(tmp_path_factory):
    """A real uvicorn with a private MASKSCOPE_HOME and a tiny model under the allowed roots."""
    require_asset(SMOLLM2 / "tokenizer.json", "smollm2")
    root = tmp_path_factory.mktemp("jobs-e2e")
    model = save_tiny_model(root / "models" / "tiny")
    (root / "home" / "assets").mkdir(parents=True)
    shared_htmx = Settings.from_env().assets_dir / "htmx"
    if shared_htmx.is_dir():  # the job list refreshes itself with htmx
        (root / "home" / "assets" / "htmx").symlink_to(shared_htmx)
    env = {
        "MASKSCOPE_HOME": str(root / "home"),
        "MASKSCOPE_TOKENIZER_ROOTS": str(model.parent),
        "PYTHONUNBUFFERED": "1",
    }
    with uvicorn_server(env) as (url, _process):
        yield url, model


def test_submit_and_follow_a_job_live(browser, jobs_server):
    url, model = jobs_server
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, base_url=url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/jobs")
    page.select_option("#preset", "quick")
    page.fill("#model", str(model))
    page.fill("#steps", "20")
    page.fill("#max_length", "64")
    page.fill("#learning_rate", "0.001")
    page.fill("#eval_every", "5")
    page.click("button[type=submit]")
    page.wait_for_url("**/jobs/*")
    # the answers before training show while the job runs, not only when it ends
    expect(page.locator("table.samples tbody tr")).to_have_count(4, timeout=120_000)
    curve = page.locator("#loss-chart path.curve.train")
    expect(curve).to_have_count(1, timeout=120_000)
    # drawn while the job is still running: the curve is live, not a final render
    assert page.locator("#job").get_attribute("data-status") in ("queued", "running")
    progress = page.locator("#job-progress")
    assert progress.get_attribute("max") == "20"
    assert 0 <= int(progress.get_attribute("value")) <= 20
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=180_000)
    expect(page.locator("#job-step")).to_have_text("arm 1: 20/20")
    expect(page.locator("#job-phase")).to_have_text("done")
    expect(progress).to_have_attribute("value", "20")
    expect(page.locator("table.samples tbody tr")).to_have_count(4, timeout=30_000)
    expect(page.locator(".artifacts a", has_text="model.safetensors")).to_have_count(1)
    # held-out loss: a thick curve with a dot per evaluation (steps 0, 5, 10, 15, 20)
    expect(page.locator("#loss-chart path.curve.eval")).to_have_count(1)
    expect(page.locator("#loss-chart circle.point.eval")).to_have_count(5)
    expect(page.locator(".verdict")).to_contain_text("The held-out loss of NEFTune went from")
    expect(page.locator("#artifacts-zip")).to_have_attribute("href", re.compile(r"artifacts\.zip$"))
    expect(page.locator(".check-note")).to_contain_text("format only")
    assert page.locator("#stat-tps").inner_text() != "–"
    import torch  # heavy: only this test needs to know which device the job trains on

    # learnt live, not from a reload; the job reports str(torch.device) of rank 0
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    expect(page.locator("#stat-device")).to_have_text(device)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "job-page.png"), full_page=True)
    page.goto("/jobs")
    expect(page.locator(".job-table .badge").first).to_have_text("succeeded")
    context.close()
    assert errors == [], errors


def test_form_shows_the_servers_refusal(browser, jobs_server):
    url, _ = jobs_server
    context = browser.new_context(base_url=url)
    page = context.new_page()
    page.goto("/jobs")
    page.fill("#model", "/etc")
    page.click("button[type=submit]")
    expect(page.locator("#form-error .error")).to_contain_text("tokenizer_roots")
    assert Path(page.url).name == "jobs"
    context.close()


def test_a_one_step_job_draws_its_loss_as_a_point(browser, jobs_server):
    url, model = jobs_server
    spec = {
        "model": str(model),
        "steps": 1,
        "max_length": 64,
        "max_new_tokens": 1,
        "sample_prompts": ["Hi?"],
    }
    job_id = httpx.post(f"{url}/api/jobs", json=spec, timeout=30).json()["id"]
    context = browser.new_context(base_url=url)
    page = context.new_page()
    page.goto(f"/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=180_000)
    page.reload()
    expect(page.locator("#loss-chart circle.point.train")).to_have_count(1)
    expect(page.locator("#loss-chart path.curve.train")).to_have_count(0)
    expect(page.locator("#job-step")).to_have_text("arm 1: 1/1")
    context.close()
