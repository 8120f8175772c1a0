"""Per-token scores in a real browser: pick smollm2, switch to loss, the very chips that show the
mask get shaded and their tooltip shows the logprob /api/score gives for that token."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from app.settings import Settings
from tests.helpers.e2e import uvicorn_server
from tests.score.conftest import finished_job
from tests.train.tiny import SMOLLM2, save_tiny_model, tiny_model

pytestmark = pytest.mark.e2e

TURNS = [("user", "What is the capital of France?"), ("assistant", "It is Paris.")]
CHIPS = "#result .chips[data-tokens] .run > span"


def conversation(page) -> None:
    page.goto("/")
    page.locator("select[name=tokenizer]").select_option("smollm2")
    page.locator("select[name=dialect]").select_option("chatml")
    while page.locator(".turn").count():
        page.locator(".turn button[data-turn=remove]").first.click()
    for role, content in TURNS:
        page.get_by_role("button", name="+ Turn").click()
        turn = page.locator(".turn").last
        turn.locator("select[name=role]").select_option(role)
        turn.locator("textarea[name=content]").fill(content)


def test_loss_shades_the_chips_and_the_tooltip_shows_the_logprob(page, server):
    conversation(page)
    body = {
        "messages": [{"role": r, "content": c} for r, c in TURNS],
        "tokenizer": "smollm2",
        "dialect": "chatml",
        "model": "smollm2",
    }
    want = httpx.post(server + "/api/score", json=body, timeout=300).json()
    expect(page.locator("[data-stat=tokens]")).to_have_text(str(len(want["input_ids"])))
    expect(page.locator(f"{CHIPS}.scored")).to_have_count(0)

    page.locator("#score-model").select_option("smollm2")
    expect(page.locator("#score-view")).to_have_value("loss")
    expect(page.locator("#score-status")).to_contain_text("mean trained loss", timeout=120_000)
    loss = want["stats"]["mean_trained_loss"]
    expect(page.locator("#score-status")).to_contain_text(f"{loss:.3f}")
    # every token but the first (nothing predicts it) is shaded
    expect(page.locator(f"{CHIPS}.scored")).to_have_count(len(want["input_ids"]) - 1)

    worst = max(range(1, len(want["tokens"])), key=lambda i: -want["tokens"][i]["logprob"])
    page.locator(CHIPS).nth(worst).hover()
    tip = page.locator("#tip")
    expect(tip).to_contain_text(f"#{worst} ")
    expect(tip).to_contain_text(f"logprob {want['tokens'][worst]['logprob']:.3f}")
    expect(tip).to_contain_text("entropy")
    shade = page.locator(CHIPS).nth(worst).evaluate("el => el.style.backgroundColor")
    assert re.match(r"rgba\(220, 38, 38, 0?\.\d+\)", shade), shade

    page.locator("#score-view").select_option("probability")
    shade = page.locator(CHIPS).nth(worst).evaluate("el => el.style.backgroundColor")
    assert shade.startswith("rgba(22, 163, 74"), shade
    page.locator("#score-view").select_option("labels")
    expect(page.locator(f"{CHIPS}.scored")).to_have_count(0)


@pytest.fixture
def job_server(tmp_path):
    """A server of its own, whose store holds one succeeded job: a tiny random Llama fine-tuned
    (here: another seed) from another, both on SmolLM2's vocabulary."""
    home, roots = tmp_path / "home", tmp_path / "models"
    home.mkdir()
    (home / "assets").symlink_to(SMOLLM2.parent)
    save_tiny_model(roots / "base")
    tiny_model(vocab=49152, seed=1).save_pretrained(roots / "tuned")
    settings = Settings(home=home, tokenizer_roots=[roots], allow_hub=False)
    job_id = finished_job(settings, roots, "succeeded")
    env = {
        "MASKSCOPE_HOME": str(home),
        "MASKSCOPE_TOKENIZER_ROOTS": str(roots),
        "MASKSCOPE_ALLOW_HUB": "false",
    }
    with uvicorn_server(env) as (url, _process):
        yield url, job_id


def test_before_vs_after_with_a_jobs_model(browser, job_server):
    url, job_id = job_server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    conversation(page)
    expect(page.locator(f"#score-model option[value='job:{job_id}']")).to_have_count(1)
    page.locator("#score-model").select_option(f"job:{job_id}")
    expect(page.locator("#score-status")).to_contain_text("mean trained loss", timeout=120_000)
    expect(page.locator("#score-view option[value=change]")).to_be_enabled()
    page.locator("#score-view").select_option("change")
    expect(page.locator("#score-status")).to_contain_text("(before: ", timeout=120_000)
    expect(page.locator(f"{CHIPS}.scored").first).to_be_visible()
    page.locator(CHIPS).nth(3).hover()
    expect(page.locator("#tip")).to_contain_text("before: logprob")
    context.close()
    assert errors == [], errors
