"""P1: render + roles + labels of a 1000-message (~8k-token) conversation vs transformers.

Ours: `render(..., dialect="tokenizer")` with SmolLM2's own ChatML template, which has no
`{% generation %}` tags (roles come from attribution). Anchor: `apply_chat_template(tokenize=True,
return_dict=True, return_assistant_tokens_mask=True)` on the same template with generation tags
added, same tokenizer, same process. Floor: the bare Rust tokenizer encoding the rendered text.
All three are run interleaved, median of REPEATS each.
The last line printed is the ratio ours / anchor (target <= 1.0).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer

REPEATS = 9
MESSAGES = 1000
TAGGED_CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a "
    "helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def conversation(n: int) -> list[Message]:
    words = ["data", "model", "token", "mask", "loss", "train", "chat", "role", "label", "text"]
    out = []
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        out.append(Message(role, " ".join(words[(i * k) % 10] for k in (1, 3, 7))))
    return out


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    settings = Settings.from_env()
    tok = load_tokenizer("smollm2", settings)
    conv = conversation(MESSAGES)
    dicts = [m.to_dict() for m in conv]
    spec = RenderSpec(tokenizer="smollm2", dialect="tokenizer")
    dialect = get_dialect("tokenizer")

    def ours():
        return render(conv, dialect, tok, spec, settings)

    def anchor():
        return tok.apply_chat_template(
            dicts,
            chat_template=TAGGED_CHATML,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )

    mine, ref = ours(), anchor()  # warm caches (compiled templates)
    assert mine.input_ids == list(ref["input_ids"]), "ids differ from apply_chat_template"
    assert [int(t.trained) for t in mine.tokens] == list(ref["assistant_masks"]), "masks differ"
    backend, text = tok.backend_tokenizer, mine.text

    def floor():  # the bare Rust encode of the same text: no render can be faster
        return backend.encode(text, add_special_tokens=False)

    ours_t, anchor_t, floor_t = [], [], []
    for _ in range(REPEATS):
        ours_t.append(timed(ours))
        anchor_t.append(timed(anchor))
        floor_t.append(timed(floor))
    a, b, f = (statistics.median(t[0] for t in ts) for ts in (ours_t, anchor_t, floor_t))
    ca, cb = (statistics.median(t[1] for t in ts) for ts in (ours_t, anchor_t))
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"conversation: {MESSAGES} messages, {len(mine.input_ids)} tokens")
    print(f"floor, bare tokenizer encode of the text:                {f * 1000:.1f} ms median")
    print(
        f"maskscope render (tokenizer dialect, no generation tags): {a * 1000:.1f} ms median "
        f"({a / f:.1f}x the floor)"
    )
    print(
        f"apply_chat_template + assistant mask (generation tags):  {b * 1000:.1f} ms median "
        f"({b / f:.1f}x the floor)"
    )
    print(f"CPU time (all threads): {ca * 1000:.1f} ms vs {cb * 1000:.1f} ms, ratio {ca / cb:.2f}")
    print(f"ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
