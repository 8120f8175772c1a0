"""DESIGN.md §7 items 29, 31 and 36: links deep in tokenizer folders, template output capped in
tokens before the server tokenizes it, and JSON bodies and dataset rows holding lone surrogates."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import pytest
from fastapi.testclient import TestClient

from app.dialects import jinja as jinja_dialect
from app.errors import InputError
from app.main import create_app
from app.settings import Settings
from app.tokenizers.registry import clear_cache, load_tokenizer
from tests.conftest import SAME_ORIGIN
from tests.helpers.errors import assert_error
from tests.helpers.security import (  # noqa: F401
    custom,
    render_body,
    tight_fixture,
    tight_settings_fixture,
)


@pytest.fixture
def tok_root(tmp_path, settings):
    """A tokenizer root holding a copy of smollm2's tokenizer, and a folder outside the root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "tok").mkdir(parents=True)
    outside.mkdir()
    (outside / "default.jinja").write_text("{{ 'leaked' }}")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(settings.assets_dir / "smollm2" / name, root / "tok" / name)
    clear_cache()
    yield root, outside, Settings.from_env(tokenizer_roots=[root], allow_hub=False)
    clear_cache()


def _nested_file_link(root, outside):
    (root / "tok" / "additional_chat_templates").mkdir()
    (root / "tok" / "additional_chat_templates" / "default.jinja").symlink_to("/etc/passwd")


def _nested_folder_link(root, outside):
    (root / "tok" / "additional_chat_templates").symlink_to(outside, target_is_directory=True)


def _link_through_an_inside_folder(root, outside):
    # tok/sub stays inside the root, but what it leads to links out.
    (root / "other").mkdir()
    (root / "other" / "default.jinja").symlink_to(outside / "default.jinja")
    (root / "tok" / "additional_chat_templates").symlink_to(root / "other")


def _link_to_a_fifo(root, outside):
    os.mkfifo(root / "fifo")
    (root / "tok" / "deep").mkdir()
    (root / "tok" / "deep" / "vocab.txt").symlink_to(root / "fifo")


@pytest.mark.parametrize(
    "plant",
    [_nested_file_link, _nested_folder_link, _link_through_an_inside_folder, _link_to_a_fifo],
)
def test_29_links_deep_in_a_tokenizer_folder_are_refused(tok_root, plant):
    root, outside, settings = tok_root
    plant(root, outside)
    with pytest.raises(InputError) as caught:
        load_tokenizer("tok", settings)
    assert caught.value.field == "tokenizer"
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/render", json=render_body(tokenizer=str(root / "tok")))
    err = assert_error(response, 422, "tokenizer folder")
    assert err["field"] == "tokenizer"


def test_29_links_that_stay_inside_are_fine(tok_root):
    root, _, settings = tok_root
    (root / "shared").mkdir()
    (root / "shared" / "default.jinja").write_text("{{ messages[0].content }}")
    (root / "tok" / "additional_chat_templates").symlink_to(root / "shared")
    (root / "tok" / "again").symlink_to(root / "tok")  # a cycle ends
    assert load_tokenizer("tok", settings)("Hello world").input_ids == [19556, 905]


def test_29_a_huge_folder_tree_is_refused(tok_root, monkeypatch):
    root, _, settings = tok_root
    monkeypatch.setattr("app.tokenizers.paths.MAX_FOLDER_ENTRIES", 5)
    for i in range(5):
        (root / "tok" / f"extra{i}").mkdir()
    with pytest.raises(InputError, match="more than 5 entries"):
        load_tokenizer("tok", settings)


@pytest.fixture
def encoded_lengths(monkeypatch):
    """The length of every text the server process tokenizes for a Jinja dialect."""
    lengths: list[int] = []
    whole, later = jinja_dialect.encode_whole, jinja_dialect.encode_later

    def spy_whole(tokenizer, text):
        lengths.append(len(text))
        return whole(tokenizer, text)

    def spy_later(tokenizer, texts, pool):
        lengths.extend(len(t) for t in texts)
        return later(tokenizer, texts, pool)

    monkeypatch.setattr(jinja_dialect, "encode_whole", spy_whole)
    monkeypatch.setattr(jinja_dialect, "encode_later", spy_later)
    return lengths


BIG = "{{ 'a ' * 99999 }}"  # 199,998 characters (under max_render_chars), 100,000 tokens


@pytest.mark.parametrize("route", ["/api/render", "/api/batch"])
def test_31_template_output_over_max_tokens_is_refused_before_the_server_tokenizes_it(
    tight, tight_settings, encoded_lengths, route
):
    body = custom(BIG)
    if route == "/api/batch":
        body["conversations"] = [body.pop("messages")]
    err = assert_error(tight.post(route, json=body), 422, "100,000 tokens")
    assert err["setting"] == "max_tokens"
    assert max(encoded_lengths, default=0) <= tight_settings.max_tokens


def test_31_millions_of_tokens_are_refused_by_the_worker_not_tokenized_here(encoded_lengths):
    # Counting 2,000,000 tokens needs more than the worker's memory ceiling: it is refused there.
    settings = Settings.from_env(max_worker_memory_mb=256, render_timeout_ms=10_000)
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/render", json=custom("{{ 'a ' * 1999999 }}"))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["setting"] in {"max_worker_memory_mb", "max_tokens"}
        assert client.post("/api/render", json=custom("{{ 'a ' * 10 }}")).status_code == 200
    assert max(encoded_lengths, default=0) <= 1000


def test_31_long_output_that_fits_max_tokens_still_renders(tight, tight_settings):
    # 150,000 spaces are about 1,200 Qwen tokens: far more characters than max_tokens, yet it fits.
    source = "{{ ' ' * 150000 }}{% for m in messages %}{{ m.content }}{% endfor %}"
    response = tight.post("/api/render", json=custom(source))
    assert response.status_code == 200, response.text
    assert len(response.json()["input_ids"]) <= tight_settings.max_tokens


def test_31_max_length_still_cuts_a_long_output(tight, tight_settings):
    response = tight.post("/api/render", json=custom(BIG, max_length=10))
    assert response.status_code == 200, response.text
    assert len(response.json()["input_ids"]) == 10


TURNS = [{"role": "user", "content": "LONE"}, {"role": "assistant", "content": "ok"}]
SPEC = {"tokenizer": "qwen3", "dialect": "chatml"}
CALLS = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "LONE"}}]},
]
CUSTOM = {"tokenizer": "qwen3", "dialect": "custom", "template": "LONE"}


def _with_lone_surrogate(value) -> str:
    """JSON text for `value` with each "LONE" string replaced by one holding a lone surrogate."""
    return json.dumps(value).replace('"LONE"', '"a\\ud800b"')


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/api/render", {"messages": TURNS, **SPEC}, "messages[0].content"),
        ("/api/lint", {"messages": TURNS, **SPEC}, "messages[0].content"),
        ("/api/batch", {"conversations": [TURNS], **SPEC}, "conversations[0][0].content"),
        ("/api/render", {"messages": CALLS, **SPEC}, "messages[1].tool_calls[0].function.name"),
        ("/api/render", {"messages": TURNS[1:], **CUSTOM}, "template"),
    ],
)
def test_36_a_lone_surrogate_in_a_body_is_422_naming_the_field(client, route, body, field):
    response = client.post(
        route, content=_with_lone_surrogate(body), headers={"content-type": "application/json"}
    )
    err = assert_error(response, 422, "lone surrogate")
    assert err["field"] == field


def test_36_a_lone_surrogate_in_a_dataset_row_is_that_row_error(client):
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    rows = [good, {"messages": TURNS}, {"instruction": "LONE", "output": "x"}, good]
    data = "".join(_with_lone_surrogate(row) + "\n" for row in rows).encode()
    response = client.post(
        "/api/inspect",
        files={"file": ("data.jsonl", data, "application/jsonl")},
        data={"tokenizer": "qwen3", "dialect": "chatml", "train_on": "assistant"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"]["rows"] == 4 and body["summary"]["bad_rows"] == 2
    errors = {r["line"]: r["error"] for r in body["rows"] if r.get("error")}
    assert set(errors) == {2, 3}
    assert "line 2: messages[0].content holds a lone surrogate" in errors[2]
    assert "line 3: instruction holds a lone surrogate" in errors[3]


@pytest.mark.parametrize("workers", [1, 2])
def test_36_deep_nesting_and_huge_integers_in_a_dataset_are_row_errors(settings, workers):
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    deep = '{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}"
    huge = '{"messages": [], "n": ' + "7" * 5_000 + "}"
    data = "\n".join([json.dumps(good), deep, huge, json.dumps(good)]).encode() + b"\n"
    app_settings = dataclasses.replace(settings, inspect_workers=workers)
    with TestClient(create_app(app_settings), headers=SAME_ORIGIN) as client:
        response = client.post(
            "/api/inspect",
            files={"file": ("data.jsonl", data, "application/jsonl")},
            data={"tokenizer": "qwen3", "dialect": "chatml"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"]["rows"] == 4 and body["summary"]["bad_rows"] == 2
    errors = {r["line"]: r["error"] for r in body["rows"] if r.get("error")}
    assert errors[2] == "line 2: nested too deeply to read"
    assert errors[3].startswith("line 3: not valid JSON") and "4300 digits" in errors[3]
