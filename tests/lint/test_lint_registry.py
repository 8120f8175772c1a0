"""The registry holds every code the product promises, and every code is documented."""

from __future__ import annotations

import re
from pathlib import Path

from app.lint import CHECKS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lints.md"
PROMISED = {
    "double-bos",
    "eot-untrained",
    "pad-is-eos",
    "no-trained-tokens",
    "prompt-trained",
    "generation-prompt-in-training",
    "default-system-injected",
    "special-token-in-content",
    "boundary-merge",
    "truncation-cuts-answer",
    "dialect-mismatch",
    "template-not-prefix-stable",
    "train-inference-mismatch",
    "response-template-context",
    "trailing-glue-trained",
    "labels-shifted",
    "labels-equal-inputs",
    "mask-methods-disagree",
    "content-not-found",
    "content-normalized",
}


def test_every_promised_code_is_registered():
    assert set(CHECKS) >= PROMISED


def test_every_code_has_a_docs_section_and_table_row_with_its_severity():
    text = DOCS.read_text(encoding="utf-8")
    headings = set(re.findall(r"^## `([a-z-]+)`$", text, flags=re.MULTILINE))
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| (\w+)", text, flags=re.MULTILINE))
    for code, item in CHECKS.items():
        assert code in headings, f"{code} has no section in docs/lints.md"
        assert rows.get(code) == item.severity, f"{code}: table severity differs from registry"


def test_every_check_has_a_summary_and_a_known_severity():
    for item in CHECKS.values():
        assert item.summary.strip()
        assert item.severity in {"error", "warning", "info"}
