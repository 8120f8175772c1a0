"""Request bodies and an app with tight limits, shared by the security tests.

The tight limits make every limit quick and cheap to hit. Test modules import the fixtures by
function name (`from tests.helpers.security import tight_fixture`; a conftest.py in
tests/security would shadow the shared one in tests/).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

TIGHT = {
    "render_timeout_ms": 1_000,
    "max_template_bytes": 4_096,
    "max_render_chars": 200_000,
    "max_body_bytes": 300_000,
    "max_messages": 50,
    "max_tokens": 2_000,
    "max_range": 10_000,
}


@pytest.fixture(scope="session", name="tight_settings")
def tight_settings_fixture() -> Settings:
    return Settings.from_env(**TIGHT)


@pytest.fixture(scope="session", name="tight")
def tight_fixture(tight_settings: Settings):
    with TestClient(create_app(tight_settings), headers={"Origin": "http://testserver"}) as client:
        yield client


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
]


def render_body(**overrides) -> dict:
    body = {"messages": MESSAGES, "tokenizer": "qwen3", "dialect": "chatml"}
    body.update(overrides)
    return body


def custom(template: str, **overrides) -> dict:
    return render_body(dialect="custom", template=template, **overrides)


# Three nested loops of 10,000: hours of work, each step within every per-operation limit.
BOMB = (
    "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
