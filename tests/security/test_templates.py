"""DESIGN.md §7 items 1-9: untrusted templates through POST /api/render on the real app.

Where the other items live: 10-17 tests/security/test_inputs.py, 18 tests/security/test_errors.py,
19 tests/fuzz/test_openapi.py, 20-24 tests/security/test_jobs.py; a real uvicorn server:
tests/security/test_real_server.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from app.templating.worker import get_pool
from tests.helpers.errors import assert_error
from tests.helpers.security import (  # noqa: F401
    BOMB,
    MESSAGES,
    custom,
    tight_fixture,
    tight_settings_fixture,
)


def _healthy(client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ok = client.post(
        "/api/render",
        json=custom("{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["text"] == "".join(f"[{m['role']}]{m['content']}" for m in MESSAGES)


@pytest.mark.parametrize(
    "payload",
    [
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__['__builtins__']['open']('/etc/passwd').read() }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ raise_exception.__globals__.jinja2 }}",
    ],
)
def test_01_injection_through_globals(tight, payload):
    err = assert_error(tight.post("/api/render", json=custom(payload)), 422)
    assert err["code"] == "template_error" and "unsafe" in err["message"]
    _healthy(tight)


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ messages.__class__.__mro__ }}",
        "{{ (''|attr('__class__')).__mro__[1] }}",
        "{% set x = namespace() %}{% set x.__class__ = 1 %}",
    ],
)
def test_02_injection_through_subclasses(tight, payload):
    err = assert_error(tight.post("/api/render", json=custom(payload)), 422)
    assert err["code"] == "template_error"
    _healthy(tight)


def test_03_import_time_jinja2_version_check():
    code = "import jinja2; jinja2.__version__ = '3.1.5'\nimport app.main\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "jinja2>=3.1.6" in result.stderr


def test_04_huge_range_names_the_limit(tight, tight_settings):
    err = assert_error(
        tight.post("/api/render", json=custom("{{ range(10**9) | length }}")),
        422,
        "max_range",
        f"{tight_settings.max_range:,}",
    )
    assert err["setting"] == "max_range"


def test_05_nested_loop_bomb_is_stopped_and_the_next_request_succeeds(tight, tight_settings):
    limit_s = tight_settings.render_timeout_ms / 1000
    started = time.monotonic()
    err = assert_error(tight.post("/api/render", json=custom(BOMB)), 422, "render timed out")
    elapsed = time.monotonic() - started
    assert err["setting"] == "render_timeout_ms"
    assert limit_s <= elapsed < limit_s + 1.0
    started = time.monotonic()
    _healthy(tight)
    assert time.monotonic() - started < 1.0
    assert len(get_pool(tight_settings)._all) == tight_settings.template_workers


@pytest.mark.parametrize(
    "payload",
    [
        "{{ 'a' * 10**8 }}",
        "{{ 10**8 * 'a' }}",
        "{{ 'a' * 10**8 * 10**8 }}",
        "{{ [1] * 10**9 }}",
        "{{ 3 ** (10**8) }}",
        "{{ (2 ** 9000) * (2 ** 9000) }}",
    ],
)
def test_06_multiplication_bombs_fail_before_allocating(tight, payload):
    started = time.monotonic()
    err = assert_error(tight.post("/api/render", json=custom(payload)), 422)
    assert err["code"] == "limit_exceeded"
    # Failing before allocation means failing at once, far below the time limit.
    assert time.monotonic() - started < 0.5


def test_07_output_past_the_cap(tight, tight_settings):
    template = "{% for i in range(5000) %}{{ 'x' * 100 }}{% endfor %}"
    err = assert_error(tight.post("/api/render", json=custom(template)), 422, "max_render_chars")
    assert err["setting"] == "max_render_chars"
    under = "{% for i in range(100) %}{{ 'x' * 100 }}{% endfor %}"
    assert tight.post("/api/render", json=custom(under)).json()["text"] == "x" * 10_000


def test_08_template_over_its_byte_cap(tight, tight_settings):
    template = "{# pad #}" * (tight_settings.max_template_bytes // 9 + 1) + "{{ 1 }}"
    err = assert_error(tight.post("/api/render", json=custom(template)), 413, "max_template_bytes")
    assert err["setting"] == "max_template_bytes"


@pytest.mark.parametrize("chunked", [False, True])
def test_08_body_over_the_size_cap(tight, tight_settings, chunked):
    body = custom(
        "{{ 1 }}", messages=[{"role": "user", "content": "x" * tight_settings.max_body_bytes}]
    )
    raw = json.dumps(body).encode()
    content = (raw[i : i + 65536] for i in range(0, len(raw), 65536)) if chunked else raw
    response = tight.post(
        "/api/render", content=content, headers={"Content-Type": "application/json"}
    )
    assert ("content-length" in response.request.headers) is not chunked
    err = assert_error(response, 413, "max_body_bytes")
    assert err["setting"] == "max_body_bytes"


@pytest.mark.parametrize(
    ("template", "line", "needle"),
    [
        ("{% for m in messages %}\n{{ m.content }\n{% endfor %}", 2, "syntax error"),
        ("a\nb\n{% if x %}\nc", 4, "syntax error"),
        (
            (
                "{% for m in messages %}\n{% if m.role == 'system' %}\n"
                "{{ raise_exception('System role not supported') }}\n{% endif %}{% endfor %}"
            ),
            3,
            "System role not supported",
        ),
    ],
)
def test_09_syntax_errors_and_raise_exception_name_message_and_line(tight, template, line, needle):
    err = assert_error(
        tight.post("/api/render", json=custom(template)), 422, needle, f"line {line}"
    )
    assert err["code"] == "template_error"
