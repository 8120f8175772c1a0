"""A body that is not JSON is named by line and column (what an editor shows), never by a
character offset dressed up as a field."""

from __future__ import annotations

import json

import pytest

from app.views.errors import json_message

BODY = '{"messages":\n  [{"role": "user", "content": "Hi"},\n   {"role": "assis'


def test_a_cut_body_names_the_line_and_column_json_itself_reports(client):
    response = client.post(
        "/api/render", content=BODY.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(BODY)
    assert f"line {reference.value.lineno}, column {reference.value.colno}" in error["message"]
    assert error["field"] == "body" and "[" not in error["message"]


def test_json_message_counts_lines_from_one():
    error = {"loc": ("body", 14), "ctx": {"error": "Expecting value"}}
    text = '{"messages":\n [x'
    assert "Expecting value at line 2, column 2." in json_message(error, text)
