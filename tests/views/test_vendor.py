"""htmx is served from the asset cache at /static/vendor/, or a 404 that names the fix."""

from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers.errors import assert_error


def test_htmx_is_served_from_the_asset_cache(client, settings):
    response = client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 200
    assert response.content == (settings.assets_dir / "htmx" / "htmx.min.js").read_bytes()
    assert "javascript" in response.headers["content-type"]


def test_missing_htmx_is_a_404_naming_the_fix(isolated_home):
    with TestClient(create_app(isolated_home("llama2"))) as client:
        assert_error(client.get("/static/vendor/htmx.min.js"), 404, "maskscope assets fetch htmx")
