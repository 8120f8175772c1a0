"""Item 39: a malformed cache file is the "run `maskscope assets fetch …`" 424, never a 500.

Each case corrupts a private copy of the real assets (isolated_home), never the shared cache.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.assets.manifest import get_asset
from app.assets.store import MARKER, check_asset
from app.main import create_app
from app.settings import Settings
from app.train.spec import JobSpec
from app.train.store import JobStore
from tests.conftest import SAME_ORIGIN
from tests.helpers.errors import assert_error
from tests.helpers.security import render_body

WRONG_SHAPES = [
    "[]",
    '"qwen3"',
    "3",
    "null",
    '{"source": [], "files": {}}',
    '{"source": {}, "files": "tokenizer.json"}',
    '{"info": ["vocab_size"]}',
    '{"format": 1, "fi',  # truncated
]


@pytest.mark.parametrize("marker", WRONG_SHAPES)
def test_39_a_malformed_tokenizer_marker_is_the_fetch_424(isolated_home, marker):
    settings = isolated_home("qwen3", "htmx", "templates-trl")
    (settings.assets_dir / "qwen3" / MARKER).write_text(marker)
    state = check_asset(get_asset("qwen3"), settings.assets_dir)
    assert not state.ok and "maskscope assets fetch qwen3" in (state.problem or "")
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        err = assert_error(client.post("/api/render", json=render_body()), 424)
        assert "maskscope assets fetch qwen3" in err["message"]
        listed = {t["name"]: t for t in client.get("/api/tokenizers").json()}
        assert listed["qwen3"]["available"] is False
        for page in ("/", "/compare", "/batch", "/inspect"):
            response = client.get(page)  # a page names the asset to fetch
            assert response.status_code in (200, 424), page
            assert response.status_code == 200 or "maskscope assets fetch" in response.text


@pytest.mark.parametrize("asset", ["htmx", "templates-trl"])
@pytest.mark.parametrize("marker", ["[]", '{"source": "x"}'])
def test_39_a_malformed_page_asset_marker_leaves_the_pages_up(isolated_home, asset, marker):
    settings = isolated_home("qwen3", "htmx", "templates-trl")
    (settings.assets_dir / asset / MARKER).write_text(marker)
    assert check_asset(get_asset(asset), settings.assets_dir).status == "corrupt"
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        for page in ("/", "/compare", "/api/templates", "/api/tokenizers"):
            assert client.get(page).status_code < 500, page
        assert client.post("/api/render", json=render_body()).status_code == 200


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_39_a_damaged_job_database_is_set_aside_and_the_server_starts(tmp_path, damage):
    settings = Settings(home=tmp_path / "home", allowed_hosts=["testserver"])
    store = JobStore(settings.db_path)
    job, _ = store.create(JobSpec(steps=1), key=None, max_active=8)
    store.finish(job.id, "cancelled")
    data = settings.db_path.read_bytes()
    damaged = data[: len(data) // 3] if damage == "truncated" else b"not a database " * 100
    settings.db_path.write_bytes(damaged)
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        assert client.get("/api/jobs").json() == {"jobs": []}
        assert client.get("/jobs").status_code == 200
    kept = list(settings.home.glob("maskscope.sqlite3.corrupt-*"))
    assert [p.read_bytes() for p in kept if p.name.endswith(tuple("0123456789"))] == [damaged]
