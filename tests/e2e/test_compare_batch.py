"""Compare and batch pages in a real browser: columns side by side, padding and packing grids."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import expect

from tests.helpers.e2e import ARTIFACTS

pytestmark = pytest.mark.e2e


MESSAGES = [
    ("system", "Be brief."),
    ("user", "Hi"),
    ("assistant", "Hello!"),
    ("user", "2+2?"),
    ("assistant", "4"),
]
PAIRS = [("qwen3", "tokenizer"), ("smollm2", "chatml"), ("llama3", "llama3"), ("llama2", "llama2")]


def compare_url(pairs=PAIRS) -> str:
    query = [("v", "1"), ("train_on", "assistant"), ("train_on_eot", "on")]
    for role, content in MESSAGES:
        query += [("role", role), ("content", content)]
    for tokenizer, dialect in pairs:
        query += [("target_tokenizer", tokenizer), ("target_dialect", dialect)]
        query += [("target_template", "")]
    return "/compare?" + urlencode(query)


def test_compare_of_four_pairs_aligns_messages_and_highlights_a_difference(page, server):
    page.goto(compare_url())
    expect(page.locator("#columns .column")).to_have_count(4)
    messages = [{"role": r, "content": c} for r, c in MESSAGES]
    results = httpx.post(
        f"{server}/api/compare",
        json={
            "messages": messages,
            "targets": [{"tokenizer": t, "dialect": d} for t, d in PAIRS],
        },
        timeout=60,
    ).json()["results"]
    shown = [int(c) for c in page.locator("#columns [data-stat=tokens]").all_inner_texts()]
    assert shown == [len(r["input_ids"]) for r in results]
    for k in range(len(MESSAGES)):
        row = page.locator(f"tr.arow[data-row='{k}']")
        cells = row.locator("td")
        expect(cells).to_have_count(4)
        # Aligned: message k starts at the same height in every column.
        tops = {round(cell.bounding_box()["y"]) for cell in cells.all()}
        assert len(tops) == 1, (k, tops)
        # Each cell holds the tokens the API gives message k (or none where another takes them).
        for cell, result in zip(cells.all(), results, strict=True):
            ids = [
                int(i)
                for i in cell.locator(".chips span").evaluate_all(
                    "els => els.map(e => e.dataset.id)"
                )
            ]
            mine = [t["id"] for t in result["tokens"] if t["message"] == k]
            assert set(mine) <= set(ids) or not ids, (k, ids, mine)
            assert len(ids) >= len(mine)
    last = page.locator("tr.arow[data-row='4']")
    expect(last.locator(".diffs")).to_contain_text("qwen3 trains <think>")
    expect(last.locator(".diffs")).to_contain_text("llama2 trains a space after the content")
    qwen3 = last.locator("td").nth(0)
    expect(qwen3).to_have_class(re.compile(r"\bdiff\b"))
    expect(qwen3.locator(".chips .dx").first).to_have_text("<think>")
    expect(last.locator("td").nth(1)).not_to_have_class(re.compile(r"\bdiff\b"))
    # Lint messages are text on the page, not a title attribute.
    expect(page.locator("#columns .lints .lint").first).to_be_visible()
    # No chip is broken across two lines (a line may end only between chips).
    broken = page.evaluate(
        """() => [...document.querySelectorAll('#columns .chips span:not(.b)')]
             .filter(s => s.getClientRects().length > 1).map(s => s.textContent)"""
    )
    assert broken == []
    page.locator("#columns .column").first.hover()
    page.locator("#columns .chips span").first.hover()
    expect(page.locator("#tip")).to_contain_text("id ")
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)


def test_a_fifth_column_scrolls_sideways_instead_of_wrapping(page):
    page.goto(compare_url([*PAIRS, ("gemma3", "gemma")]))
    expect(page.locator("#columns .column")).to_have_count(5)
    tops = {round(c.bounding_box()["y"]) for c in page.locator("#columns .column").all()}
    assert len(tops) == 1
    wide = page.evaluate(
        "() => { const w = document.querySelector('#columns');"
        " return [w.scrollWidth > w.clientWidth, document.documentElement.scrollWidth]; }"
    )
    assert wide == [True, 1280]


def test_batch_left_padding_and_packing(page):
    page.goto("/batch")
    page.get_by_label("left").check()
    expect(page.locator("#batch-result")).to_contain_text("padding left")
    first_row_mask = page.locator(".brow").first.locator("tr.mask td")
    masks = first_row_mask.all_inner_texts()
    assert masks[0] == "0" and masks[-1] == "1"  # the shortest conversation is padded on the left
    packed = page.locator(".brow").filter(has_text="conversations").first
    positions = [int(p) for p in packed.locator("tr.pos td").all_inner_texts()]
    restarts = [i for i, p in enumerate(positions) if p == 0]
    assert restarts[0] == 0 and len(restarts) >= 2
    labels = packed.locator("tr.labels td").all_inner_texts()
    assert all(labels[i] == "-100" for i in restarts)
    # The attention explanation and its two thumbnails show once, not under every packed row.
    expect(page.locator("#batch-result .attn")).to_have_count(1)
    expect(page.locator("#batch-result .attn svg")).to_have_count(2)
    # One column width for every row, and one scroll: position i lines up across the batch.
    grids = page.locator(".bgroup").first.locator(".bscroll")
    widths = grids.evaluate_all(
        "els => els.map(e => [...e.querySelectorAll('tr.tok td')].slice(0, 3)"
        ".map(td => td.getBoundingClientRect().width))"
    )
    assert len({w for row in widths for w in row}) == 1, widths
    grids.first.evaluate("e => { e.scrollLeft = 40; e.dispatchEvent(new Event('scroll')); }")
    expect(grids.nth(1)).to_have_js_property("scrollLeft", 40)


@pytest.mark.parametrize("path", ["/", "/batch"])
@pytest.mark.parametrize("value", ["0", "-5", "1.5"])
def test_an_invalid_max_length_is_marked_in_place_and_the_result_marked_stale(page, path, value):
    page.goto(path)
    target = "#result" if path == "/" else "#batch-result"
    field = page.locator("input[name=max_length]")
    field.fill(value)
    expect(field).to_have_attribute("aria-invalid", "true")
    note = page.locator("#error-max_length")
    expect(note).to_contain_text("whole number of tokens, at least 1")
    assert field.evaluate("f => f.nextElementSibling.id") == "error-max_length"
    expect(page.locator(f"{target} .stale-note")).to_contain_text("Not updated")
    field.fill("12")
    expect(field).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"{target} .stale-note")).to_have_count(0)
    expect(page.locator(f"{target} .error")).to_have_count(0)


def test_the_conversation_travels_playground_compare_batch_jobs(page):
    page.goto("/")
    page.locator("textarea[name=content]").first.fill("Carried across pages")
    page.wait_for_function("location.search.includes('Carried')")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Compare").click()
    page.wait_for_url("**/compare?*")
    expect(page.locator("textarea[name=content]").first).to_have_value("Carried across pages")
    expect(page.locator("#columns tr[data-row='0'] .chips").first).to_contain_text("Carried")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Batch").click()
    page.wait_for_url("**/batch?*")
    expect(page.locator("textarea[name=conversations]")).to_have_value(
        re.compile("Carried across pages")
    )
    expect(page.locator(".conv")).to_have_count(1)
    page.go_back()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    page.wait_for_url("**/jobs?*")
    expect(page.locator("#preset option").first).to_have_text(re.compile("playground"))


def test_a_typed_hub_id_that_fails_keeps_its_name_in_the_picker(page):
    page.goto("/")
    picker = page.locator("select[name=tokenizer]")
    expect(page.locator("[data-avail-for=tokenizer]")).to_contain_text("bundled, fetched")
    page.get_by_text("Local folder or Hub id…").first.click()
    entry = page.get_by_label("Tokenizer: local folder or Hub id")
    entry.fill("someorg/not-here")
    entry.press("Enter")
    error = page.locator("#result .error")
    expect(error).to_contain_text("someorg/not-here", timeout=30_000)
    expect(error).to_have_attribute("data-status", "424")
    expect(picker).to_have_value("someorg/not-here")
    expect(page.locator("[data-avail-for=tokenizer]")).to_contain_text("Hub id")
    page.wait_for_function("location.search.includes('someorg')")
    # The next edit renders the same tokenizer again, not a silent fallback to smollm2.
    page.locator("select[name=train_on]").select_option("all")
    expect(error).to_contain_text("someorg/not-here", timeout=30_000)
    page.reload()
    expect(picker).to_have_value("someorg/not-here")
    expect(page.locator("#result .error")).to_contain_text("someorg/not-here")


def test_the_playground_puts_the_tokens_beside_or_below_the_editor(page):
    page.goto("/")
    editor, tokens = page.locator("#playground"), page.locator("section.output")
    assert tokens.bounding_box()["x"] > editor.bounding_box()["x"] + 100  # beside
    page.get_by_label("Tokens below the editor").check()
    below = editor.bounding_box()
    assert tokens.bounding_box()["y"] >= below["y"] + below["height"]
    page.reload()  # the choice is remembered
    expect(page.get_by_label("Tokens below the editor")).to_be_checked()
    box = editor.bounding_box()
    assert tokens.bounding_box()["y"] >= box["y"] + box["height"]


def test_arrow_keys_walk_a_compare_cell_whose_tokens_are_not_contiguous(page):
    page.goto(compare_url())
    # Llama 2 folds the system prompt into the first user turn: message 1's tokens come in two
    # runs with message 0's between them.
    cell = page.locator("tr.arow[data-row='1'] td").nth(3)
    expect(cell.locator(".run")).to_have_count(2)
    ids = cell.locator(".chips span").evaluate_all("els => els.map(e => e.dataset.id)")
    cell.locator(".chips").focus()
    page.keyboard.press("ArrowRight")
    walked = []
    for _ in ids:
        walked.append(page.evaluate("document.activeElement.dataset.id"))
        page.keyboard.press("ArrowRight")
    assert walked == ids


def test_inspect_takes_the_playground_conversation_as_a_one_row_dataset(page, server):
    page.goto("/")
    page.locator("select[name=tokenizer]").select_option("qwen3")
    page.locator("textarea[name=content]").first.fill("Inspect me")
    page.wait_for_function("location.search.includes('Inspect+me')")
    query = page.evaluate("location.search")
    line = httpx.get(f"{server}/fragments/conversation.jsonl{query}", timeout=30).text
    assert json.loads(line)["messages"][0]["content"] == "Inspect me"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Inspect").click()
    page.wait_for_url("**/inspect")
    expect(page.locator("[data-carried]")).to_contain_text("one-row dataset")
    form = page.locator("form.inspect-form")
    assert form.locator("input[name=file]").evaluate("f => f.files[0].name") == "conversation.jsonl"
    expect(form.locator("select[name=tokenizer]")).to_have_value("qwen3")
    form.get_by_role("button", name="Inspect", exact=True).click()
    expect(page.locator("#run [data-stat=rows]")).to_have_text("1", timeout=60_000)


def test_a_custom_template_can_start_from_the_tokenizers_own(page):
    page.goto("/?v=1&tokenizer=qwen3&dialect=tokenizer&train_on_eot=on&role=user&content=Hi")
    own = int(page.locator("#result [data-stat=tokens]").inner_text())
    page.locator("select[name=dialect]").select_option("custom")
    page.get_by_role("button", name="Start from this tokenizer's template").click()
    expect(page.locator("[data-own-template-status]")).to_have_text("qwen3's template loaded")
    expect(page.locator("textarea[name=template]")).to_have_value(re.compile("im_start"))
    expect(page.locator("#result [data-stat=tokens]")).to_have_text(str(own), timeout=30_000)


def test_from_the_batch_page_the_settings_travel_and_the_playground_keeps_its_conversation(page):
    page.goto("/batch")
    page.locator("select[name=tokenizer]").select_option("qwen3")
    page.locator("input[name=train_on_eot]").uncheck()
    page.wait_for_function("location.search.includes('qwen3')")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
    page.wait_for_url("**/?*")
    expect(page.locator("select[name=tokenizer]")).to_have_value("qwen3")
    expect(page.locator("input[name=train_on_eot]")).not_to_be_checked()
    assert page.locator("textarea[name=content]").count() >= 2  # the example, not an empty editor
    expect(page.locator("#result [data-stat=tokens]")).to_be_visible()
