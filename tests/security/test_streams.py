"""Item 35 (event streams): SSE caps per job and in all, against `maskscope serve` on real sockets.

Jobs are written straight into the server's database: one marked running (so the runner starts
nothing, it runs one job at a time) and a few queued behind it, whose streams stay open.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
import time

import pytest

from app.train.spec import JobSpec
from app.train.store import JobStore
from tests.helpers.security import maskscope_serve

PER_JOB, TOTAL = 2, 3


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("streams-home")
    env = {
        "MASKSCOPE_HOME": str(home),
        "MASKSCOPE_MAX_EVENT_STREAMS": str(TOTAL),
        "MASKSCOPE_MAX_EVENT_STREAMS_PER_JOB": str(PER_JOB),
    }
    with maskscope_serve(env) as (base, _):
        store = JobStore(home / "maskscope.sqlite3")
        with contextlib.closing(sqlite3.connect(store.path)) as db, db:
            db.execute(
                "INSERT INTO jobs (id, status, spec, total_steps, created_at) "
                "VALUES ('holding00000', 'running', ?, 1, ?)",
                (json.dumps(JobSpec(steps=1).model_dump()), time.time()),
            )
        jobs = [store.create(JobSpec(steps=1), key=None, max_active=8)[0].id for _ in range(3)]
        yield int(base.rsplit(":", 1)[1]), jobs


def _open(port: int, path: str) -> tuple[socket.socket, bytes]:
    """Send a GET and read its head (and body, if it has a length); the socket stays open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    length = re.search(rb"content-length: (\d+)", head.lower())
    if length:  # an answer, not a stream: read its body too
        while len(head.split(b"\r\n\r\n", 1)[1]) < int(length.group(1)):
            head += sock.recv(4096)
    return sock, head


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def test_35_event_streams_are_capped_per_job_and_in_all(served):
    port, (first, second, third) = served
    held = []
    try:
        for _ in range(PER_JOB):
            sock, head = _open(port, f"/api/jobs/{first}/events")
            held.append(sock)
            assert _status(head) == 200 and b"text/event-stream" in head
        sock, head = _open(port, f"/api/jobs/{first}/events")
        sock.close()
        assert _status(head) == 429 and b"retry-after: 5" in head.lower()
        assert b"max_event_streams_per_job" in head
        sock, head = _open(port, f"/api/jobs/{second}/events")
        held.append(sock)
        assert _status(head) == 200
        sock, head = _open(port, f"/api/jobs/{third}/events")
        sock.close()
        assert _status(head) == 429 and b'"setting":"max_event_streams"' in head
    finally:
        for sock in held:
            sock.close()
    # A closed stream frees its slot (the server notices at its next poll).
    deadline = time.monotonic() + 10
    while True:
        sock, head = _open(port, f"/api/jobs/{third}/events")
        sock.close()
        if _status(head) == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert _status(head) == 200, head


@pytest.mark.parametrize("query", ["?after=99999999999999999999", "?after=-1"])
def test_35_an_after_beyond_any_seq_is_a_422(served, query):
    port, (first, *_) = served
    sock, head = _open(port, f"/api/jobs/{first}/events{query}")
    sock.close()
    assert _status(head) == 422 and b"after" in head


def test_35_a_huge_last_event_id_is_refused_not_a_crash(served):
    port, (first, *_) = served
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with sock:
        sock.sendall(
            f"GET /api/jobs/{first}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Last-Event-ID: {'9' * 5000}\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 422")
