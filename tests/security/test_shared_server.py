"""DESIGN.md §7 items 25, 26, 28 and 40: what a server that people share refuses and adds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import routers as api_routers
from app.main import create_app
from app.middleware import UPLOAD_PATHS
from app.settings import Settings
from app.views import routers as view_routers
from tests.helpers.errors import assert_error


@pytest.fixture(scope="module")
def loopback(settings):
    """An app with the default allowed hosts (the loopback names and the bind host)."""
    defaults = Settings(home=settings.home, host="10.1.2.3", allow_hub=False)
    with TestClient(create_app(defaults), base_url="http://localhost:8000") as client:
        yield client


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:9", "[::1]:8000", "10.1.2.3:8000"]
)
def test_25_allowed_hosts_are_answered(loopback, host):
    assert loopback.get("/healthz", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/healthz"), ("get", "/api/dialects"), ("post", "/api/render"), ("get", "/")],
)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example"])
def test_25_a_foreign_host_is_refused_before_any_route(loopback, method, path, host):
    response = loopback.request(method, path, headers={"Host": host}, json={})
    err = assert_error(response, 400, "allowed_hosts")
    assert err["setting"] == "allowed_hosts" and err["code"] == "host_not_allowed"


def test_25_the_allowed_hosts_setting_admits_a_name(tmp_path):
    settings = Settings(home=tmp_path, allowed_hosts=["maskscope.internal"])
    with TestClient(create_app(settings), base_url="http://maskscope.internal") as client:
        assert client.get("/healthz").status_code == 200
        assert_error(client.get("/healthz", headers={"Host": "localhost"}), 400, "allowed_hosts")
        assert client.get("/healthz", headers={"Host": "127.0.0.1"}).status_code == 200


def test_25_allowed_hosts_reads_a_comma_separated_variable():
    settings = Settings.from_env({"MASKSCOPE_ALLOWED_HOSTS": "a.example, b.example"})
    assert settings.allowed_hosts == ["a.example", "b.example"]


TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INLINE = [
    (re.compile(r'<script(?![^>]*\bsrc=)(?![^>]*type="application/json")[^>]*>'), "inline script"),
    (re.compile(r"\sstyle=", re.I), "style attribute"),
    (re.compile(r"<style\b", re.I), "style element"),
    (re.compile(r"\son[a-z]+=", re.I), "event handler attribute"),
    (re.compile(r"\bhx-on|\bhx-vars|js:", re.I), "htmx eval"),
]


@pytest.mark.parametrize(
    "path", ["/", "/compare", "/batch", "/inspect", "/api/dialects", "/static/css/app.css", "/nope"]
)
def test_28_every_response_carries_the_security_headers(loopback, path):
    headers = loopback.get(path).headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    csp = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert csp["default-src"] == csp["script-src"] == csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"


def test_28_a_refused_host_gets_the_headers_too(loopback):
    response = loopback.get("/healthz", headers={"Host": "evil.example"})
    assert response.status_code == 400 and response.headers["x-frame-options"] == "DENY"


def test_28_no_cdn_docs_and_the_schema_stays(loopback):
    assert loopback.get("/docs").status_code == 404
    assert loopback.get("/redoc").status_code == 404
    assert loopback.get("/openapi.json").json()["info"]["title"] == "Maskscope"


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_28_templates_need_nothing_the_csp_refuses(template):
    text = template.read_text(encoding="utf-8")
    found = [what for pattern, what in INLINE if pattern.search(text)]
    assert not found, f"{template.name}: {found} (the CSP allows only the app's own files)"


BODY_CAP, UPLOAD_CAP = 10_000, 1_000_000
SAME_ORIGIN = {"Origin": "http://localhost:8000"}


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    settings = Settings(
        home=tmp_path_factory.mktemp("capped"),
        allow_hub=False,
        max_body_bytes=BODY_CAP,
        max_upload_bytes=UPLOAD_CAP,
    )
    with TestClient(create_app(settings), base_url="http://localhost:8000") as client:
        yield client


# Every (path, method) that may change state, read from the routers the app includes.
WRITES = sorted(
    (re.sub(r"\{[^}]+\}", "x", route.path), method)
    for router in (*api_routers, *view_routers)
    for route in router.routes
    for method in getattr(route, "methods", None) or ()
    if method in {"POST", "PUT", "PATCH", "DELETE"}
)


def _multipart(size: int) -> bytes:
    return (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="d.jsonl"\r\n\r\n'
        + b"x" * size
        + b"\r\n--b--\r\n"
    )


def _chunks(body: bytes):
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


def test_40_every_route_that_writes_is_listed():
    assert {path for path, _ in WRITES} >= UPLOAD_PATHS
    assert ("/api/render", "POST") in WRITES and len(WRITES) >= 10


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_40_a_multipart_claim_gets_no_upload_cap_outside_the_upload_routes(capped, chunked):
    body = _multipart(3 * BODY_CAP)
    headers = {**SAME_ORIGIN, "Content-Type": "multipart/form-data; boundary=b"}
    for path, method in WRITES:
        if path in UPLOAD_PATHS or (chunked and path.startswith("/api/jobs/x")):
            continue  # the upload routes are below; a job's actions never read a body to count
        content = _chunks(body) if chunked else body
        response = capped.request(method, path, content=content, headers=headers)
        err = assert_error(response, 413, "max_body_bytes")
        assert err["setting"] == "max_body_bytes", (method, path)


@pytest.mark.parametrize("path", sorted(UPLOAD_PATHS))
def test_40_the_upload_routes_have_the_upload_cap(capped, path):
    headers = {**SAME_ORIGIN, "Content-Type": "multipart/form-data; boundary=b"}
    small = capped.post(path, content=_multipart(3 * BODY_CAP), headers=headers)
    assert small.status_code != 413, small.text
    big = capped.post(path, content=_chunks(_multipart(2 * UPLOAD_CAP)), headers=headers)
    assert_error(big, 413, "max_upload_bytes")


FORM = {"v": "1", "role": "user", "content": "Hi", "tokenizer": "qwen3", "dialect": "chatml"}
JSON_RENDER = {"messages": [{"role": "user", "content": "Hi"}], "tokenizer": "qwen3"}


@pytest.mark.parametrize(("path", "method"), WRITES)
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:9999"])
def test_26_a_foreign_origin_cannot_write_anywhere(loopback, path, method, origin):
    response = loopback.request(method, path, json={}, headers={"Origin": origin})
    err = assert_error(response, 403, "Origin")
    assert err["code"] == "cross_origin"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 403),
        ({"Referer": "https://evil.example/page"}, 403),
        ({"Referer": "http://localhost:8000/"}, 200),
        ({"Origin": "http://localhost:8000"}, 200),
    ],
)
def test_26_a_form_post_needs_a_same_origin_origin_or_referer(loopback, headers, status):
    response = loopback.post("/fragments/render", data=FORM, headers=headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert_error(response, 403, "no Origin" if not headers else "Referer")


def test_26_text_plain_without_origin_is_refused_and_json_clients_pass(loopback):
    plain = loopback.post(
        "/api/render", content=json.dumps(JSON_RENDER), headers={"Content-Type": "text/plain"}
    )
    assert_error(plain, 403, "text/plain")
    assert loopback.post("/api/render", json=JSON_RENDER).status_code == 200  # curl, scripts


# '~' joins at render time: the output MARKED never appears in the template's own source.
CONVERSATION = json.dumps([{"role": "user", "content": "Hi"}])
MARKED = "{% for m in messages %}{{ 'MAR' ~ 'KED' }}{% endfor %}"


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/", {**FORM, "dialect": "custom", "template": MARKED}),
        (
            "/batch",
            {**FORM, "dialect": "custom", "template": MARKED, "conversations": CONVERSATION},
        ),
        (
            "/compare",
            {
                **FORM,
                "target_tokenizer": ["qwen3", "qwen3"],
                "target_dialect": ["custom", "chatml"],
                "target_template": [MARKED, ""],
            },
        ),
    ],
)
def test_26_a_get_permalink_never_runs_a_pasted_template(loopback, path, query):
    page = loopback.get(path, params=query)
    assert page.status_code == 200
    assert "MARKED" not in page.text and "data-pending" in page.text
    if path == "/compare":  # the built-in column still renders on GET
        assert page.text.count("data-tokens") == 1
    fragment = f"/fragments{path if path != '/' else '/render'}"
    posted = loopback.post(fragment, data=query, headers={"Origin": "http://localhost:8000"})
    assert posted.status_code == 200 and "data-pending" not in posted.text
