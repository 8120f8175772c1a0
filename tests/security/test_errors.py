"""DESIGN.md §7 item 18: one error shape for every JSON 4xx; htmx gets a fragment it swaps in."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers.errors import assert_error
from tests.helpers.security import (  # noqa: F401
    custom,
    render_body,
    tight_fixture,
    tight_settings_fixture,
)

BAD_RENDERS = [
    (render_body(tokenizer="no-such-tokenizer"), 422),
    (render_body(dialect="no-such-dialect"), 422),
    (render_body(train_on="everything"), 422),
    (render_body(messages="not a list"), 422),
    (render_body(messages=[{"role": "wizard", "content": "x"}]), 422),
    (render_body(max_length=0), 422),
    (custom("{{ x }"), 422),
    (custom("{{ range(10**9) | length }}"), 422),
    (custom("{# x #}" * 2000), 413),
    (render_body(tokenizer="someone/model"), None),  # 424 offline, 200 with a warm Hub cache
]


@pytest.mark.parametrize(("body", "status"), BAD_RENDERS)
def test_18_every_json_4xx_has_the_one_shape(tight, body, status):
    response = tight.post("/api/render", json=body)
    if status is None and response.status_code == 200:
        return
    err = assert_error(response, status or response.status_code)
    assert 400 <= err["status"] < 500 and err["message"].strip()
    assert err["field"] or err["setting"], err  # it names what to change


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/api/no-such-route", {}, 404),
        ("delete", "/api/render", {}, 405),
        (
            "post",
            "/api/render",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            422,
        ),
        (
            "post",
            "/api/render",
            {"content": b"", "headers": {"Content-Type": "application/json"}},
            422,
        ),
        ("get", "/api/jobs/does-not-exist", {}, 404),
    ],
)
def test_18_framework_errors_have_the_one_shape_too(tight, method, path, kwargs, status):
    assert_error(getattr(tight, method)(path, **kwargs), status)


@pytest.mark.parametrize(
    ("form", "status", "needle"),
    [
        ({"tokenizer": "no-such-tokenizer"}, 422, "no-such-tokenizer"),
        ({"dialect": "custom", "template": "{{ range(10**9) | length }}"}, 422, "max_range"),
        ({"dialect": "custom", "template": "{# x #}" * 2000}, 413, "max_template_bytes"),
    ],
)
def test_18_htmx_requests_get_the_error_fragment(tight, form, status, needle):
    data = {
        "v": "1",
        "tokenizer": "qwen3",
        "dialect": "chatml",
        "role": ["user"],
        "content": ["hi"],
        **form,
    }
    response = tight.post("/fragments/render", data=data, headers={"HX-Request": "true"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text and needle in response.text
    assert f'data-status="{status}"' in response.text


def _first_rule(rules: list[dict], status: int) -> dict:
    # htmx 2 takes the first responseHandling entry whose `code` regex matches the status.
    return next(r for r in rules if re.fullmatch(r["code"], str(status)))


def test_18_htmx_is_configured_to_swap_error_fragments(tight):
    page = tight.get("/")
    assert page.status_code == 200
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page.text)
    assert meta, "base.html must configure htmx's responseHandling"
    rules = json.loads(meta.group(1))["responseHandling"]
    for status in (400, 404, 409, 413, 422, 424, 429):
        assert _first_rule(rules, status)["swap"] is True, status
    assert _first_rule(rules, 200)["swap"] is True
    assert _first_rule(rules, 204)["swap"] is False
