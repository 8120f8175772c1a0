"""P5: an 8k-token conversation, from request to rendered DOM in headless Chromium (bar: 1 s),
and the HTML it costs per token (bar: 150 bytes); with `--tokens 28000`, the 28k-token bar (2 s).

Setup: a real uvicorn on loopback and Debian's Chromium (Playwright). The playground is opened,
the conversation is put into its editor, and each timed run clears the result, fires the form's
htmx request and waits until all chips are in the DOM and two animation frames have passed (style,
layout and paint done), timed inside the page with performance.now(). The server's share is timed
separately with the same form over HTTP. Bytes are those of the fragment the browser receives.
The last two lines printed are the ratios against the bars (<= 1.0 passes).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import conversation, uvicorn_server

TOKENIZER, DIALECT = "smollm2", "chatml"
REPEATS = 7
BAR_BYTES = 150.0
# Conversation size -> the time bar it must meet (DESIGN §6, P5).
BARS = {8192: 1.0, 28000: 2.0}
TARGET_TOKENS = int(sys.argv[sys.argv.index("--tokens") + 1]) if "--tokens" in sys.argv else 8192
BAR_SECONDS = BARS.get(TARGET_TOKENS, 1.0 if TARGET_TOKENS <= 8192 else 2.0)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

FILL = """(turns) => {
  const list = document.querySelector('#playground .turns');
  const tpl = document.getElementById('turn-template');
  list.replaceChildren();
  for (const [role, content] of turns) {
    const node = tpl.content.firstElementChild.cloneNode(true);
    node.querySelector('select[name=role]').value = role;
    node.querySelector('textarea[name=content]').value = content;
    list.append(node);
  }
}"""

TIMED = """async (expected) => {
  const form = document.getElementById('playground');
  const result = document.getElementById('result');
  result.replaceChildren();
  const done = new Promise((resolve) => {
    const seen = new MutationObserver(() => {
      const chips = result.querySelector('.chips[data-tokens]');
      if (chips && chips.querySelectorAll('span').length === expected) {
        seen.disconnect();
        resolve();
      }
    });
    seen.observe(result, { childList: true, subtree: true });
  });
  const t0 = performance.now();
  htmx.trigger(form, 'submit');
  await done;
  result.getBoundingClientRect();
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const chips = performance.now() - t0;
  // The lint panel follows in its own request; it is in once its placeholder is replaced.
  while (result.querySelector('#lints[hx-post]')) await new Promise((r) => setTimeout(r, 5));
  return [chips, performance.now() - t0];
}"""


def eight_k_conversation(http: httpx.Client) -> tuple[list[dict[str, str]], int]:
    """Grow the shared benchmark conversation until it renders to at least TARGET_TOKENS."""
    turns = 48 * max(1, TARGET_TOKENS // 8192)
    while True:
        messages = conversation(turns=turns)
        body = {"messages": messages, "tokenizer": TOKENIZER, "dialect": DIALECT}
        tokens = len(http.post("/api/render", json=body).json()["input_ids"])
        if tokens >= TARGET_TOKENS:
            return messages, tokens
        turns += 4


def form_of(messages: list[dict[str, str]]) -> dict[str, object]:
    return {
        "v": "1",
        "tokenizer": TOKENIZER,
        "dialect": DIALECT,
        "train_on": "assistant",
        "train_on_eot": "on",
        "role": [m["role"] for m in messages],
        "content": [m["content"] for m in messages],
    }


def server_side(http: httpx.Client, form: dict[str, object]) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        # A form post from the page's own origin, as the browser sends it (a foreign one is a 403).
        origin = str(http.base_url).rstrip("/")
        headers = {"HX-Request": "true", "Origin": origin}
        response = http.post("/fragments/render", data=form, headers=headers)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        size = len(response.content)
    return times, size


def in_browser(base: str, messages: list[dict[str, str]], tokens: int) -> list[list[float]]:
    """[seconds to chips rendered, seconds to lint panel in] per run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")
        page.wait_for_function("() => window.htmx !== undefined")
        page.evaluate(FILL, [[m["role"], m["content"]] for m in messages])
        page.evaluate(TIMED, tokens)  # warm-up: caches, JIT, fonts
        times = [[t / 1000 for t in page.evaluate(TIMED, tokens)] for _ in range(REPEATS)]
        browser.close()
    return times


def main() -> None:
    with uvicorn_server() as (base, _), httpx.Client(base_url=base, timeout=120) as http:
        messages, tokens = eight_k_conversation(http)
        form = form_of(messages)
        server_side(http, form)  # warm-up
        server_times, size = server_side(http, form)
        browser_times = in_browser(base, messages, tokens)
    per_token = size / tokens
    chips = [run[0] for run in browser_times]
    p50, worst = statistics.median(chips), max(chips)
    lints = statistics.median(run[1] for run in browser_times)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load}, python {platform.python_version()}"
    )
    print(f"conversation: {len(messages)} messages, {tokens} tokens ({TOKENIZER}/{DIALECT})")
    server = statistics.median(server_times)
    print(f"server fragment (/fragments/render): p50 {server * 1000:.0f} ms")
    print(
        f"request -> rendered DOM in headless Chromium: p50 {p50 * 1000:.0f} ms, "
        f"max {worst * 1000:.0f} ms over {REPEATS} runs (bar {BAR_SECONDS * 1000:.0f} ms)"
    )
    print(f"request -> lint panel in (its own request, after the chips): p50 {lints * 1000:.0f} ms")
    print(
        f"HTML: {size} bytes for {tokens} tokens = {per_token:.1f} bytes/token "
        f"(bar {BAR_BYTES:.0f})"
    )
    print(f"P5 time ratio (p50 / bar): {p50 / BAR_SECONDS:.2f}")
    print(f"P5 bytes ratio (bytes per token / bar): {per_token / BAR_BYTES:.2f}")


if __name__ == "__main__":
    main()
