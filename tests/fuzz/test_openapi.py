"""DESIGN.md §7 item 19: schemathesis over /openapi.json, in-process: no 5xx, responses conform.

The app runs with its own home (the real assets linked in, a fresh job database), no Hub access
and jobs capped to one step, so generated requests can neither reach the network nor start real
training runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from app.main import create_app
from app.settings import Settings


def _app():
    real = Settings.from_env()
    home = Path(tempfile.mkdtemp(prefix="maskscope-fuzz-"))
    (home / "assets").symlink_to(real.assets_dir, target_is_directory=True)
    settings = Settings.from_env(
        home=home, allow_hub=False, max_train_steps=1, max_queued_jobs=1, render_timeout_ms=1_000
    )
    return create_app(settings)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@hypothesis_settings(
    max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
def test_api_has_no_server_errors_and_conforms(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
