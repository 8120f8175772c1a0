"""Print the template zoo's results, one row per template: `python -m tests.zoo.table`.

Columns: the tokenizer used; conversations run / skipped (by transformers or for want of tools);
text equal to apply_chat_template; trained == generated passes / failures (templates with their
own {% generation %} tags are not held to it: their tags decide); on tagged templates, Maskscope's
trained positions vs transformers' assistant mask, and the tags vs the rule (a difference there is
the tags' convention); the reference's notes: turns whose text does not start with their prompt,
turns without an end-of-turn marker. `--details` lists every failure, skip and note below.

Example: python -m tests.zoo.table --details > zoo.txt
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter

from tests.zoo.checks import (
    Outcome,
    check_generated,
    check_tags_against_rule,
    check_text,
    check_twin,
    is_tagged,
)
from tests.zoo.conversations import CONVERSATIONS
from tests.zoo.templates import ALL_TEMPLATES, tokenizer_for

COLUMNS = (
    "template",
    "tokenizer",
    "run/skip",
    "text ok/fail",
    "generated ok/fail",
    "mask ok/fail",
    "tags=rule ok/fail",
    "mismatch/no-marker",
)


def _counts(outcomes: list[Outcome]) -> str:
    count = Counter(o.status for o in outcomes)
    return f"{count['pass']}/{count['fail']}" if count["pass"] + count["fail"] else "-"


def table_rows(details: list[str]) -> list[tuple[str, ...]]:
    """One row per template; failures and notes are appended to `details`."""
    rows = []
    for template in ALL_TEMPLATES:
        texts, generated, masks, tags = [], [], [], []
        for conv in CONVERSATIONS:
            checks = [("text", check_text, texts), ("generated", check_generated, generated)]
            if is_tagged(template):
                checks.append(("mask", check_twin, masks))
                checks.append(("tags", check_tags_against_rule, tags))
            for label, check, into in checks:
                outcome = check(template, conv)
                into.append(outcome)
                if outcome.status == "fail":
                    details.append(f"FAIL {label} {template} {conv}: {outcome.detail}")
                if outcome.status == "skip" and label == "text":
                    details.append(f"skip {template} {conv}: {outcome.detail[:160]}")
                details.extend(f"note {template} {conv}: {n}" for n in outcome.notes)
        skipped = sum(o.status == "skip" for o in texts)
        notes = [n for o in generated + tags for n in o.notes]
        mismatch = sum("does not start" in n for n in notes)
        rows.append(
            (
                template,
                tokenizer_for(template),
                f"{len(texts) - skipped}/{skipped}",
                _counts(texts),
                _counts(generated),
                _counts(masks),
                _counts(tags),
                f"{mismatch}/{len(notes) - mismatch}" if notes else "-",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--details", action="store_true", help="List failures and notes too.")
    args = parser.parse_args(argv)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    details: list[str] = []
    rows = table_rows(details)
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    for row in [COLUMNS, *rows]:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        sys.stdout.write("\n")
    if args.details:
        sys.stdout.write("\n" + "\n".join(details) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
