"""The playground in a real browser: typing, switching dialects, tooltips, keyboard, errors,
permalinks, copy-out, escaping, and the screenshot the README shows."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from transformers import AutoTokenizer

from app.settings import Settings

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

TURNS = [("system", "You are terse."), ("user", "What is 2 + 2?"), ("assistant", "It is 4.")]


@pytest.fixture(scope="module")
def smollm2():
    return AutoTokenizer.from_pretrained(Settings.from_env().assets_dir / "smollm2")


def type_conversation(page, turns, keystrokes: bool = False) -> None:
    """Clear the editor, then add every turn; `keystrokes` types it key by key like a user."""
    page.goto("/")
    while page.locator(".turn").count():
        page.locator(".turn button[data-turn=remove]").first.click()
    for role, content in turns:
        page.get_by_role("button", name="+ Turn").click()
        turn = page.locator(".turn").last
        turn.locator("select[name=role]").select_option(role)
        box = turn.locator("textarea[name=content]")
        if keystrokes:
            box.press_sequentially(content)
        else:
            box.fill(content)


def token_count(page) -> int:
    return int(page.locator("[data-stat=tokens]").inner_text())


def api_render(server: str, turns, **fields) -> dict:
    body = {"messages": [{"role": r, "content": c} for r, c in turns], **fields}
    return httpx.post(f"{server}/api/render", json=body, timeout=60).json()


def test_typed_conversation_matches_the_reference_and_dialects_change_the_count(
    page, server, smollm2
):
    type_conversation(page, TURNS, keystrokes=True)
    page.locator("select[name=tokenizer]").select_option("smollm2")
    page.locator("select[name=dialect]").select_option("chatml")
    # Reference: SmolLM2's own (ChatML) template through transformers.
    messages = [{"role": r, "content": c} for r, c in TURNS]
    reference = smollm2.apply_chat_template(messages, tokenize=True, return_dict=True)
    expect(page.locator("[data-stat=tokens]")).to_have_text(str(len(reference["input_ids"])))
    counts = {"chatml": token_count(page)}
    for dialect in ("llama2", "llama3"):
        page.locator("select[name=dialect]").select_option(dialect)
        want = len(api_render(server, TURNS, tokenizer="smollm2", dialect=dialect)["input_ids"])
        expect(page.locator("[data-stat=tokens]")).to_have_text(str(want))
        counts[dialect] = want
    assert len(set(counts.values())) == 3, counts


def test_hover_and_keyboard_show_the_token_details(page, smollm2):
    page.goto(
        "/?v=1&tokenizer=smollm2&dialect=chatml&train_on=assistant&train_on_eot=on"
        "&role=user&content=Hi&role=assistant&content=Hello"
    )
    chips = page.locator("#result .chips[data-tokens] span")
    chips.first.hover()
    tip = page.locator("#tip")
    im_start = smollm2.convert_tokens_to_ids("<|im_start|>")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(f"id {im_start}  label -100 (not trained)")
    expect(tip).to_contain_text("special token")
    # Keyboard: the chip run is one tab stop; arrows walk it.
    page.locator("#result .chips[data-tokens]").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    ids = smollm2.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "system", "content": "x"}][:1],
        tokenize=True,
        return_dict=True,
    )["input_ids"]
    expect(tip).to_contain_text("#2  id")
    assert page.evaluate("document.activeElement.dataset.id") is not None
    page.keyboard.press("End")
    last = chips.last
    expect(last).to_be_focused()
    trained = page.locator("#result .chips[data-tokens] span.t").first
    trained.hover()
    trained_id = trained.get_attribute("data-id")
    expect(tip).to_contain_text(f"id {trained_id}  label {trained_id}\n")
    assert ids  # the reference tokenizer loaded the same vocabulary the page used


def test_script_typed_into_a_message_is_shown_as_text(page):
    attack = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    type_conversation(page, [("user", attack), ("assistant", "ok")])
    chips = page.locator("#result .chips[data-tokens]")
    expect(chips).to_contain_text("<script>window.pwned=1</script>")
    assert page.evaluate("window.pwned") is None
    assert page.locator("#result script, #result img").count() == 0


def test_a_broken_custom_template_shows_the_error_inline_then_recovers(page):
    page.goto("/")
    page.locator("select[name=dialect]").select_option("custom")
    editor = page.locator("textarea[name=template]")
    expect(editor).to_be_visible()
    editor.fill("{% for m in messages %}{{ m.content }")
    error = page.locator("#result .error")
    expect(error).to_contain_text("422")
    editor.fill("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}")
    expect(page.locator("#result .chips[data-tokens]")).to_contain_text("<user>")
    expect(error).to_have_count(0)


def test_permalink_restores_the_state_and_copy_gives_the_api_arrays(page, browser, server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    type_conversation(page, [("user", "Permalink me"), ("assistant", "Done.")])
    page.locator("select[name=tokenizer]").select_option("qwen3")
    page.locator("input[name=add_generation_prompt]").check()
    turns = [("user", "Permalink me"), ("assistant", "Done.")]
    reference = api_render(
        server, turns, tokenizer="qwen3", dialect="chatml", add_generation_prompt=True
    )
    count = len(reference["input_ids"])
    expect(page.locator("[data-stat=tokens]")).to_have_text(str(count))
    expect(page).to_have_url(re.compile(r"tokenizer=qwen3.*add_generation_prompt=on"))
    other = browser.new_page()
    other.goto(page.url)
    expect(other.locator("[data-stat=tokens]")).to_have_text(str(count))
    expect(other.locator(".turn textarea[name=content]").first).to_have_value("Permalink me")
    other.close()
    for what in ("input_ids", "labels"):
        page.get_by_role("button", name=f"Copy {what}").click()
        expect(page.locator("#copy-status")).to_have_text("Copied")
        assert json.loads(page.evaluate("navigator.clipboard.readText()")) == reference[what]


def test_examples_load_and_colour_by_label_switches_the_palette(page):
    page.goto("/")
    page.locator("select[data-examples]").select_option("hello")
    expect(page.locator(".turn textarea[name=content]").first).to_have_value("你好")
    expect(page.locator("#result .chips[data-tokens]")).to_contain_text("AI")
    user_chip = page.locator("#result .chips[data-tokens] span.u").first
    by_role = user_chip.evaluate("c => getComputedStyle(c).getPropertyValue('--c')")
    page.get_by_label("Colour by label").check()
    by_label = user_chip.evaluate("c => getComputedStyle(c).getPropertyValue('--c')")
    assert by_role.strip() and by_label.strip() and by_role != by_label


def test_lint_findings_arrive_and_point_at_their_tokens(page):
    page.goto(
        "/?v=1&tokenizer=smollm2&dialect=chatml&train_on=assistant&train_on_eot=on"
        "&role=user&content=Hi&role=assistant&content=Hello"
    )
    finding = page.locator("#lints .lint").filter(has_text="pad-is-eos")
    expect(finding).to_have_count(1)
    finding.get_by_role("button").click()
    focused = page.locator("#result .chips[data-tokens] span:focus")
    expect(focused).to_have_class(re.compile(r"\bhl\b"))
    expect(page.locator("#tip")).to_contain_text("<|im_end|>")


def test_turns_reorder_and_the_page_fits_a_narrow_window(page):
    page.goto("/")
    first = page.locator(".turn textarea[name=content]").first.input_value()
    page.locator(".turn button[data-turn=down]").first.click()
    expect(page.locator(".turn textarea[name=content]").nth(1)).to_have_value(first)
    page.set_viewport_size({"width": 420, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


def test_playground_screenshot(page):
    page.goto("/")
    page.locator("select[data-examples]").select_option("code")
    expect(page.locator("#result .chips[data-tokens]")).to_contain_text("func")
    page.locator("#result .chips[data-tokens] span.t").nth(6).hover()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = page.screenshot(full_page=True)
    (ARTIFACTS / "playground.png").write_bytes(shot)
    docs = REPO / "docs" / "screenshot.png"
    # The README's copy is refreshed on request only, so a test run leaves the tree clean.
    if not docs.exists() or os.environ.get("MASKSCOPE_UPDATE_SCREENSHOT") == "1":
        docs.parent.mkdir(exist_ok=True)
        docs.write_bytes(shot)
    assert Path(ARTIFACTS / "playground.png").stat().st_size > 10_000


def test_a_known_template_loads_into_the_editor_and_renders_with_its_parts(page):
    """Start from TRL's Qwen3 template: the editor fills, the dialect becomes custom, and a
    reasoning turn is shaded as reasoning."""
    type_conversation(
        page, [("user", "2+2?"), ("assistant", "<think>\nadd them\n</think>\n\nIt is 4.")]
    )
    page.locator("select[name=tokenizer]").select_option("qwen3")
    page.locator("select[name=dialect]").select_option("custom")
    pick = page.locator("select[data-known-templates]")
    pick.focus()
    expect(pick.locator("option[value='trl/qwen3']")).to_have_count(1)
    pick.select_option("trl/qwen3")
    expect(page.locator("textarea[name=template]")).to_have_value(re.compile(r"<\|im_start\|>"))
    chips = page.locator("#result .chips[data-tokens]")
    # A pasted template renders in a worker: the first one may be starting.
    expect(chips.locator("span.q.t").first).to_be_visible(timeout=20_000)
    assert "add" in "".join(chips.locator("span.q").all_inner_texts())
