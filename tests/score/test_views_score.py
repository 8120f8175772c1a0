"""The browser's routes for scores: the playground form's /api/score body, and /inspect's
ranking of a dataset by loss (the partial the page includes, and what its form gets back)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from app.service.requests import RenderRequest
from tests.conftest import SAME_ORIGIN
from tests.helpers.forms import submitted_fields
from tests.score.conftest import CHAT

HTMX = {"HX-Request": "true", **SAME_ORIGIN}


def test_the_playground_form_becomes_the_score_body(client):
    page = client.get("/")
    assert 'id="score-model"' in page.text and "/static/js/score.js" in page.text
    fields = submitted_fields(page.text, "playground")
    assert "score_model" not in dict(fields)  # the picker is not part of the render form
    for message in CHAT[1:3]:  # two turns, as the editor posts them
        fields += [("role", message["role"]), ("content", message["content"])]
    form = {"Content-Type": "application/x-www-form-urlencoded", **HTMX}
    body = client.post("/fragments/score-request", content=urlencode(fields), headers=form)
    assert body.status_code == 200, body.text
    request = RenderRequest(**body.json())  # a valid render body, as /api/score takes it
    assert request.tokenizer == dict(fields)["tokenizer"]
    assert request.messages[-2:] == CHAT[1:3]
    scored = client.post("/api/score", json={**body.json(), "tokenizer": "smollm2"})
    assert scored.status_code == 200, scored.text


def test_the_inspect_page_includes_the_ranking_form(client):
    page = client.get("/inspect")
    assert 'id="score-rank"' in page.text and 'hx-post="/inspect/score"' in page.text


def test_a_dataset_ranked_by_loss_on_the_inspect_page(client, tmp_path):
    rows = [
        {"messages": CHAT[1:3]},
        {"messages": [CHAT[1], {"role": "assistant", "content": "Qx7#vB9!kL zr@pw"}]},
    ]
    data = "\n".join(json.dumps(r) for r in rows) + "\n{broken\n"
    response = client.post(
        "/inspect/score",
        data={"tokenizer": "smollm2", "dialect": "tokenizer", "model": "smollm2"},
        files={"file": ("rows.jsonl", data.encode(), "application/jsonl")},
        headers=HTMX,
    )
    assert response.status_code == 200, response.text
    html = response.text
    assert 'data-scored="2"' in html and 'data-error-line="3"' in html
    assert html.index('data-line="2"') < html.index('data-line="1"')  # the noise row first
    assert html.count("<meter") == 10


def test_ranking_without_a_file_names_the_field(client):
    response = client.post("/inspect/score", data={"model": "smollm2"}, headers=HTMX)
    assert response.status_code == 422 and "file" in response.text
