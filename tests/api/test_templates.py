"""GET /api/templates: the template zoo by name, and one template's source."""

from __future__ import annotations

from app.assets.zoo import zoo_names, zoo_templates
from app.settings import Settings
from tests.helpers.assets import require_asset


def test_every_known_template_is_listed_with_its_twin(client):
    body = client.get("/api/templates").json()
    assert [t["name"] for t in body] == zoo_names()
    qwen3 = next(t for t in body if t["name"] == "trl/qwen3")
    assert qwen3["project"] == "trl" and qwen3["training_twin"] == "trl/qwen3_training"


def test_a_known_template_comes_back_as_its_project_ships_it(client):
    installed = zoo_templates(Settings.from_env().assets_dir)
    path = require_asset(
        installed.get("axolotl/llama4") or Settings.from_env().assets_dir / "templates-axolotl",
        "templates-axolotl",
    )
    body = client.get("/api/templates/axolotl/llama4").json()
    assert body == {"name": "axolotl/llama4", "source": path.read_text(encoding="utf-8")}


def test_an_unknown_template_is_a_404_that_says_where_the_list_is(client):
    response = client.get("/api/templates/trl/nope")
    assert response.status_code == 404
    assert "/api/templates" in response.json()["error"]["message"]
