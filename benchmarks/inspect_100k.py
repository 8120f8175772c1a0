"""A 100k-row dataset through `maskscope lint` and the /inspect page: rows/s and peak memory.

The file mixes conversations in the three row formats (messages, ShareGPT, Alpaca), pre-tokenized
rows (some with shifted labels) and a malformed line every 10,000 rows. The CLI runs as a real
process (peak RSS of it and its workers from getrusage); the page runs in this process against
the real app (upload, poll until done, drill into one row), peak RSS of this process.
The last line printed is the page's rows/s.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lint_vs_trl import conversations

ROWS = int(os.environ.get("ROWS", "100000"))


def write_dataset(path: Path, rows: int) -> None:
    from app.settings import Settings
    from app.tokenizers.registry import load_tokenizer

    tokenizer = load_tokenizer("smollm2", Settings.from_env())
    chats = conversations(1000)
    rng = random.Random(1)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(rows):
            chat = chats[i % len(chats)]["messages"]
            if i % 10_000 == 9_999:
                out.write("{this line is broken\n")
                continue
            kind = i % 10
            if kind == 0:
                ids = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True)
                ids = list(ids["input_ids"])
                labels = ids[1:] + [-100] if rng.random() < 0.5 else list(ids)
                row = {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}
            elif kind == 1:
                row = {
                    "conversations": [
                        {
                            "from": "human"
                            if m["role"] == "user"
                            else "gpt"
                            if m["role"] == "assistant"
                            else "system",
                            "value": m["content"],
                        }
                        for m in chat
                    ]
                }
            elif kind == 2:
                row = {"instruction": chat[1]["content"], "input": "", "output": chat[2]["content"]}
            else:
                row = {"messages": chat}
            out.write(json.dumps(row) + "\n")


def run_cli(path: Path) -> None:
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "lint",
            str(path),
            "--tokenizer",
            "smollm2",
            "--dialect",
            "chatml",
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(done.stdout)
    print(
        f"CLI: exit {done.returncode}, {seconds:.1f} s, {ROWS / seconds:,.0f} rows/s, "
        f"peak RSS of the largest process {peak:,.0f} MiB"
    )


def run_page(path: Path) -> float:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with TestClient(create_app(Settings.from_env())) as client:
        start = time.perf_counter()
        with open(path, "rb") as fh:
            answer = client.post(
                "/inspect/runs",
                files={"file": ("big.jsonl", fh)},
                data={"tokenizer": "smollm2", "dialect": "chatml"},
                headers={"HX-Request": "true"},
            )
        run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", answer.text).group(1)
        polls = 0
        while "Summary" not in (
            body := client.get(f"/inspect/runs/{run_id}", headers={"HX-Request": "true"}).text
        ):
            polls += 1
            time.sleep(1)
        seconds = time.perf_counter() - start
        row = client.get(f"/inspect/runs/{run_id}/rows/1", headers={"HX-Request": "true"})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = re.search(r'data-stat="rows">([\d,]+)<', body).group(1)
    print(
        f"page: {rows} rows in {seconds:.1f} s ({polls} progress polls), row 1 drill-down "
        f"{row.status_code}, {len(body):,} bytes of summary HTML; peak RSS of the server "
        f"process {peak:,.0f} MiB (before: {before:,.0f} MiB)"
    )
    return ROWS / seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        start = time.perf_counter()
        write_dataset(path, ROWS)
        print(
            f"wrote {ROWS:,} rows, {path.stat().st_size / 1e6:,.1f} MB in "
            f"{time.perf_counter() - start:.1f} s; {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f}"
        )
        run_cli(path)
        rate = run_page(path)
        print(f"page rows/s: {rate:,.0f}")


if __name__ == "__main__":
    main()
