"""Compare and batch pages in a real browser: columns side by side, padding and packing grids."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_compare_shows_four_columns_with_their_own_counts(page, server):
    page.goto("/compare")
    columns = page.locator("#columns .column")
    expect(columns).to_have_count(4)
    messages = [
        {"role": r, "content": c}
        for r, c in zip(
            page.locator(".turn select[name=role]").evaluate_all("els => els.map(e => e.value)"),
            page.locator(".turn textarea").evaluate_all("els => els.map(e => e.value)"),
            strict=True,
        )
    ]
    targets = [
        {"tokenizer": t, "dialect": d}
        for t, d in zip(
            page.locator("select[name=target_tokenizer]").evaluate_all("e => e.map(x => x.value)"),
            page.locator("select[name=target_dialect]").evaluate_all("e => e.map(x => x.value)"),
            strict=True,
        )
    ]
    results = httpx.post(
        f"{server}/api/compare", json={"messages": messages, "targets": targets}, timeout=60
    ).json()
    shown = [int(c) for c in page.locator("#columns [data-stat=tokens]").all_inner_texts()]
    assert shown == [len(r["input_ids"]) for r in results["results"]]
    # Side by side at 1280 px: the four columns share one row.
    tops = {round(box["y"]) for box in (c.bounding_box() for c in columns.all())}
    assert len(tops) == 1
    page.get_by_role("button", name="+ Column").click()
    expect(columns).to_have_count(5)
    page.locator("#columns .column").first.locator(".chips span").first.hover()
    expect(page.locator("#tip")).to_contain_text("id ")


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
    expect(packed.locator("svg")).to_have_count(2)
