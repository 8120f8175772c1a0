"""The body limit on a real app: declared and streamed bodies, JSON and htmx answers."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from app.middleware import BodyLimitMiddleware
from app.settings import Settings
from app.views.errors import install_error_handlers
from tests.helpers.errors import assert_error

LIMIT = 1_000


@pytest.fixture(scope="module")
def echo_client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        settings=Settings(max_body_bytes=LIMIT, max_upload_bytes=4 * LIMIT),
        upload_paths=frozenset({"/upload"}),
    )
    reads: list[int] = []

    @app.post("/echo")
    @app.post("/upload")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        reads.append(len(body))
        return {"bytes": len(body)}

    client = TestClient(app)
    client.reads = reads
    return client


def _chunks(total: int, size: int = 300):
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_body_at_the_limit_passes(echo_client):
    assert echo_client.post("/echo", content=b"x" * LIMIT).json() == {"bytes": LIMIT}
    assert echo_client.post("/echo", content=_chunks(LIMIT)).json() == {"bytes": LIMIT}


def test_declared_length_over_the_limit_is_refused_unread(echo_client):
    before = len(echo_client.reads)
    response = echo_client.post("/echo", content=b"x" * (LIMIT + 1))
    assert_error(response, 413, "1,000 bytes", "max_body_bytes")
    assert len(echo_client.reads) == before  # the endpoint never ran


def test_streamed_body_over_the_limit_is_refused(echo_client):
    response = echo_client.post("/echo", content=_chunks(LIMIT * 10))
    assert "content-length" not in response.request.headers
    err = assert_error(response, 413, "max_body_bytes")
    assert err["setting"] == "max_body_bytes"


def test_an_upload_route_has_its_own_cap(echo_client):
    files = {"file": ("data.jsonl", b"x" * (2 * LIMIT))}
    assert echo_client.post("/upload", files=files).status_code == 200
    files = {"file": ("data.jsonl", b"x" * (5 * LIMIT))}
    assert_error(echo_client.post("/upload", files=files), 413, "max_upload_bytes")


def test_a_multipart_claim_earns_no_upload_cap_elsewhere(echo_client):
    files = {"file": ("data.jsonl", b"x" * (2 * LIMIT))}
    assert_error(echo_client.post("/echo", files=files), 413, "max_body_bytes")


def test_htmx_request_gets_the_error_fragment(echo_client):
    response = echo_client.post("/echo", content=b"x" * (LIMIT + 1), headers={"HX-Request": "true"})
    assert response.status_code == 413
    assert 'role="alert"' in response.text and "max_body_bytes" in response.text
