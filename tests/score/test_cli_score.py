"""`maskscope score`: one conversation's per-token table or JSON, and a dataset ranked by loss."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from tests.score.conftest import CHAT

ARGS = ["--tokenizer", "smollm2", "--dialect", "tokenizer", "--model", "smollm2"]
ROWS = [
    {"messages": [CHAT[1], CHAT[2]]},
    {"messages": [CHAT[1], {"role": "assistant", "content": "Qx7#vB9!kL zr@pw"}]},
    "not json",
    {"messages": [CHAT[3], CHAT[4]]},
]


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in ROWS) + "\n")
    return path


def test_a_conversation_as_a_table_and_as_the_api_json(tmp_path, capsys):
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(CHAT))
    assert main(["score", str(path), *ARGS, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["tokens"][0]["logprob"] is None and body["tokens"][1]["logprob"] < 0
    assert main(["score", str(path), *ARGS]) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert len([line for line in lines if line[:5].strip().isdigit()]) == len(body["tokens"])
    loss = body["stats"]["mean_trained_loss"]
    assert f"mean trained loss {loss:.4f}" in table
    assert "end of turn after message 4" in table


def test_a_dataset_ranked_by_loss(dataset, capsys):
    assert main(["score", "--dataset", str(dataset), *ARGS, "--top", "2", "--json"]) == 0
    out = capsys.readouterr()
    ranking = json.loads(out.out)
    assert len(ranking["rows"]) == 2 and ranking["rows"][0]["line"] == 2  # noise first; --top 2
    assert ranking["scored"] == 3 and not ranking["truncated"]
    losses = [r["mean_trained_loss"] for r in ranking["rows"]]
    assert losses == sorted(losses, reverse=True) and losses[0] > 3
    assert [e["line"] for e in ranking["errors"]] == [3]
    assert sum(b["count"] for b in ranking["histogram"]) == 3
    assert "scoring row 1" in out.err


def test_the_row_bound_is_a_setting(dataset, capsys, monkeypatch):
    monkeypatch.setenv("MASKSCOPE_MAX_SCORE_ROWS", "1")
    assert main(["score", "--dataset", str(dataset), *ARGS, "--quiet"]) == 0
    out = capsys.readouterr()
    assert "stopped after 1 rows (the max_score_rows setting)" in out.out
    assert "histogram" in out.out and not out.err


def test_bad_input_names_what_to_change(tmp_path, capsys):
    assert main(["score", *ARGS]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["score", "--dataset", str(tmp_path / "none.jsonl"), *ARGS]) == 2
    assert "Cannot read" in capsys.readouterr().err
