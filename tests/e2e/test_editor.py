"""The structured conversation editor in a real browser: a tool call and a reasoning turn typed
under Qwen3's own template (checked against transformers), their parts shaded and counted, a
typo in JSON shown next to its box, and an image part under Gemma 3 as one collapsed chip."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import expect
from transformers import AutoTokenizer

from app.settings import Settings
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def qwen3():
    return AutoTokenizer.from_pretrained(Settings.from_env().assets_dir / "qwen3")


def start(page, tokenizer: str, dialect: str) -> None:
    """The playground with no turns, under `tokenizer` and `dialect`."""
    page.goto("/")
    page.locator("select[name=tokenizer]").select_option(tokenizer)
    page.locator("select[name=dialect]").select_option(dialect)
    while page.locator(".turn").count():
        page.locator(".turn button[data-turn=remove]").first.click()


def add_turn(page, role: str, content: str = ""):
    page.get_by_role("button", name="+ Turn").click()
    turn = page.locator(".turn").last
    turn.get_by_label("Role of turn").select_option(role)
    turn.get_by_label("Content of turn").fill(content)
    return turn


def type_tool_conversation(page) -> None:
    """TOOL_CALL_TURNS, entered field by field as a user would."""
    add_turn(page, "user", TOOL_CALL_TURNS[0]["content"])
    turn = add_turn(page, "assistant")
    turn.get_by_label("Reasoning of turn").fill(TOOL_CALL_TURNS[1]["reasoning_content"])
    turn.get_by_role("button", name="+ Tool call").click()
    call = turn.locator(".call").last
    expect(call.locator("[data-name=call_name]")).to_be_focused()
    page.keyboard.type("get_weather")
    expect(call.locator("[data-name=call_id]")).to_have_value("call_1")
    call.get_by_label("arguments (JSON object)").fill('{"city": "Paris"}')
    tool = add_turn(page, "tool", TOOL_CALL_TURNS[2]["content"])
    tool.locator("[data-name=tool_name]").fill("get_weather")
    tool.locator("[data-name=tool_call_id]").fill("call_1")
    last = add_turn(page, "assistant", TOOL_CALL_TURNS[3]["content"])
    last.get_by_label("Reasoning of turn").fill(TOOL_CALL_TURNS[3]["reasoning_content"])
    page.locator("summary", has_text="Tools and template variables").click()
    page.locator("textarea[name=tools]").fill(json.dumps(WEATHER_TOOLS))


def test_a_tool_call_and_reasoning_turn_render_as_transformers_and_are_shaded(page, server, qwen3):
    start(page, "qwen3", "tokenizer")
    type_tool_conversation(page)
    reference = qwen3.apply_chat_template(
        TOOL_CALL_TURNS, tools=WEATHER_TOOLS, tokenize=True, return_dict=True
    )["input_ids"]
    # The first render loads the tokenizer in the server: allow it seconds.
    expect(page.locator("[data-stat=tokens]")).to_have_text(str(len(reference)), timeout=30_000)
    api = httpx.post(
        f"{server}/api/render",
        json={
            "messages": TOOL_CALL_TURNS,
            "tools": WEATHER_TOOLS,
            "tokenizer": "qwen3",
            "dialect": "tokenizer",
        },
        timeout=60,
    ).json()
    assert api["input_ids"] == reference
    chips = page.locator("#result .chips[data-tokens] .run > span")
    for part, cls in (("reasoning", "q"), ("tool_call", "f")):
        want = sum(t["trained"] for t in api["tokens"] if t["part"] == part)
        assert want > 0
        shaded = page.locator(f"#result .chips[data-tokens] .run > span.t.{cls}")
        expect(shaded).to_have_count(want)
        expect(page.locator(f"[data-stat=trained-{part}]")).to_have_text(str(want))
        expect(page.locator(f"#result .legend [data-legend={part}]")).to_be_visible()
    # A tool response is never trained and shows as role tool.
    assert (
        chips.evaluate_all(
            "cs => cs.filter(c => c.classList.contains('o') && c.classList.contains('t')).length"
        )
        == 0
    )
    # Reasoning left untrained: the shading stays, the training goes.
    page.get_by_label("Train reasoning").uncheck()
    expect(page.locator("[data-stat=trained-reasoning]")).to_have_text("0")
    expect(page.locator("#result .chips[data-tokens] .run > span.q")).not_to_have_count(0)
    # The permalink carries it all (empty optional fields left out): a new page shows the same.
    assert "image_width_0=" not in page.url and "reasoning_1=I+should" in page.url
    other = page.context.new_page()
    other.goto(page.url)
    expect(other.locator("[data-stat=tokens]")).to_have_text(str(len(reference)))
    expect(other.locator("[data-stat=trained-reasoning]")).to_have_text("0")
    expect(other.locator(".call [data-name=call_arguments]")).to_have_value('{"city": "Paris"}')
    other.close()


def test_a_typo_in_json_is_shown_next_to_its_box_and_no_stale_result_stays(page):
    start(page, "qwen3", "tokenizer")
    add_turn(page, "user", "Weather?")
    turn = add_turn(page, "assistant")
    turn.get_by_role("button", name="+ Tool call").click()
    turn.locator("[data-name=call_name]").fill("get_weather")
    args = turn.get_by_label("arguments (JSON object)")
    args.fill('{"city": ')
    note = turn.locator(".field-error")
    expect(note).to_contain_text("messages[1].tool_calls[0].function.arguments")
    expect(args).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#result .chips[data-tokens]")).to_have_count(0)
    args.fill('{"city": "Paris"}')
    expect(page.locator("#result .chips[data-tokens]")).to_have_count(1)
    expect(note).to_have_count(0)
    page.locator("summary", has_text="Tools and template variables").click()
    page.locator("textarea[name=chat_template_kwargs]").fill("[1]")
    expect(page.locator(".field-error")).to_contain_text("chat_template_kwargs")


def test_the_enable_thinking_box_follows_the_template(page, qwen3):
    start(page, "qwen3", "tokenizer")
    add_turn(page, "user", "Hi")
    page.get_by_label("Add generation prompt").check()
    box = page.get_by_label("enable_thinking")
    expect(box).to_be_visible()
    box.uncheck()
    want = qwen3.apply_chat_template(
        [{"role": "user", "content": "Hi"}],
        add_generation_prompt=True,
        enable_thinking=False,
        return_dict=True,
    )["input_ids"]
    expect(page.locator("[data-stat=tokens]")).to_have_text(str(len(want)))
    expect(page).to_have_url(re.compile(r"enable_thinking=off"))
    page.locator("select[name=dialect]").select_option("chatml")
    expect(box).to_be_hidden()


def test_an_image_part_under_gemma3_is_one_collapsed_chip_that_opens(page):
    start(page, "gemma3", "tokenizer")
    turn = add_turn(page, "user", "What is this?")
    turn.locator("[data-name=image_width]").fill("640")
    turn.locator("[data-name=image_height]").fill("480")
    add_turn(page, "assistant", "A cat.")
    chip = page.locator("#result .chips[data-tokens] span[data-rep]")
    expect(chip).to_have_count(1, timeout=30_000)  # the first Gemma 3 load takes seconds
    expect(chip).to_have_attribute("data-rep", "256")
    visible_images = "#result .chips[data-tokens] .run > span.i:not(.ih)"
    # Gemma3Processor writes "\n\n<start_of_image>", 256 soft tokens, "<end_of_image>\n\n": all
    # part image; collapsed, the 256 show as one chip.
    expect(page.locator("#result [data-part=image]")).to_contain_text("of 260")
    expect(page.locator(visible_images)).to_have_count(260 - 255)
    expect(page.locator("[data-stat=trained-image]")).to_have_text("0")
    expect(page.locator("#result .legend [data-legend=image]")).to_be_visible()
    chip.click()
    expect(page.locator(visible_images)).to_have_count(260)
    # By keyboard too: arrow keys walk to the chip and Enter closes the repeats again.
    box = page.locator("#result .chips[data-tokens]")
    index = box.evaluate(
        "b => Array.from(b.querySelectorAll('.run > span')).indexOf(b.querySelector('[data-rep]'))"
    )
    box.focus()
    for _ in range(index + 1):
        page.keyboard.press("ArrowRight")
    expect(chip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(visible_images)).to_have_count(260 - 255)
    expect(chip).to_have_attribute("aria-expanded", "false")


def test_a_pasted_openai_conversation_fills_the_editor(page, qwen3):
    start(page, "qwen3", "tokenizer")
    page.locator("summary", has_text="Paste a conversation").click()
    page.locator("textarea[data-paste]").fill("not json")
    page.get_by_role("button", name="Load into the editor").click()
    expect(page.locator("[data-paste-status]")).to_contain_text("Not loaded")
    expect(page.locator(".turn")).to_have_count(0)
    pasted = {"messages": TOOL_CALL_TURNS, "tools": WEATHER_TOOLS}
    page.locator("textarea[data-paste]").fill(json.dumps(pasted))
    page.get_by_role("button", name="Load into the editor").click()
    expect(page.locator("[data-paste-status]")).to_have_text("Loaded 4 turns.")
    expect(page.locator(".turn")).to_have_count(4)
    reference = qwen3.apply_chat_template(
        TOOL_CALL_TURNS, tools=WEATHER_TOOLS, tokenize=True, return_dict=True
    )["input_ids"]
    expect(page.locator("[data-stat=tokens]")).to_have_text(str(len(reference)), timeout=30_000)
    expect(page.locator(".call [data-name=call_arguments]")).to_have_value('{"city":"Paris"}')
    expect(page.locator("#result .chips[data-tokens] .run > span.t.f")).not_to_have_count(0)


def test_the_tool_use_example_loads_with_its_tools(page):
    start(page, "qwen3", "tokenizer")
    page.locator("select[data-examples]").select_option("tool_use")
    expect(page.locator(".turn")).to_have_count(4)
    expect(page.locator("textarea[name=tools]")).to_have_value(re.compile("get_weather"))
    expect(page.locator("#result .legend [data-legend=tool_call]")).to_be_visible(timeout=30_000)
    expect(page.locator("#result .legend [data-legend=reasoning]")).to_be_visible()
