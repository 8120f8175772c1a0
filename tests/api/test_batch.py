"""POST /api/batch: rows checked against padding and packing written out here from /api/render."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from tests.helpers.errors import assert_error

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How are you?"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ],
    [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "Red."},
    ],
]


def _rendered(client, tokenizer="qwen3", dialect="chatml"):
    return [
        client.post(
            "/api/render", json={"messages": c, "tokenizer": tokenizer, "dialect": dialect}
        ).json()
        for c in CONVERSATIONS
    ]


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_matches_a_hand_padded_batch(client, settings, side):
    pad = AutoTokenizer.from_pretrained(settings.assets_dir / "qwen3").pad_token_id
    singles = _rendered(client)
    width = max(len(s["input_ids"]) for s in singles)
    body = {
        "conversations": CONVERSATIONS,
        "tokenizer": "qwen3",
        "dialect": "chatml",
        "padding_side": side,
    }
    response = client.post("/api/batch", json=body)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    for single, row in zip(singles, rows, strict=True):
        n, gap = len(single["input_ids"]), width - len(single["input_ids"])
        fill = {"input_ids": [pad] * gap, "labels": [-100] * gap, "attention_mask": [0] * gap}
        real = {
            "input_ids": single["input_ids"],
            "labels": single["labels"],
            "attention_mask": [1] * n,
        }
        for key in fill:
            want = real[key] + fill[key] if side == "right" else fill[key] + real[key]
            assert row[key] == want, key
        start = 0 if side == "right" else gap
        assert row["position_ids"][start : start + n] == list(range(n))
    assert response.json()["pad_token_id"] == pad


def test_packing_restarts_positions_and_masks_each_first_label(client):
    singles = _rendered(client)
    length = max(len(s["input_ids"]) for s in singles) + 10
    body = {
        "conversations": CONVERSATIONS,
        "tokenizer": "qwen3",
        "dialect": "chatml",
        "pack": True,
        "max_length": length,
    }
    rows = client.post("/api/batch", json=body).json()["rows"]
    seen = []
    for row in rows:
        assert len(row["input_ids"]) <= length and all(m == 1 for m in row["attention_mask"])
        for start, end, index in row["segments"]:
            single = singles[index]
            seen.append(index)
            assert row["input_ids"][start:end] == single["input_ids"]
            assert row["position_ids"][start:end] == list(range(end - start))
            assert row["labels"][start] == -100
            assert row["labels"][start + 1 : end] == single["labels"][1:]
    assert sorted(seen) == [0, 1, 2] and len(rows) < len(CONVERSATIONS)


def test_max_length_cuts_each_conversation_like_the_engine(client):
    body = {
        "conversations": CONVERSATIONS,
        "tokenizer": "qwen3",
        "dialect": "chatml",
        "max_length": 8,
    }
    rows = client.post("/api/batch", json=body).json()["rows"]
    cut = [
        client.post(
            "/api/render",
            json={"messages": c, "tokenizer": "qwen3", "dialect": "chatml", "max_length": 8},
        ).json()
        for c in CONVERSATIONS
    ]
    assert [r["input_ids"] for r in rows] == [c["input_ids"] for c in cut]


def test_too_many_conversations_names_the_setting(client, settings):
    body = {
        "conversations": [CONVERSATIONS[0]] * (settings.max_batch_conversations + 1),
        "tokenizer": "qwen3",
        "dialect": "chatml",
    }
    err = assert_error(client.post("/api/batch", json=body), 422, "max_batch_conversations")
    assert err["setting"] == "max_batch_conversations"


def test_a_bad_message_names_its_conversation(client):
    bad = [CONVERSATIONS[0], [{"role": "wizard", "content": "x"}]]
    err = assert_error(
        client.post("/api/batch", json={"conversations": bad, "tokenizer": "qwen3"}),
        422,
        "conversations[1]",
    )
    assert err["field"].startswith("conversations[1]")
