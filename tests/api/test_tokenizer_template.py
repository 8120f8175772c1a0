"""GET /api/templates/tokenizer: the template a tokenizer renders with, as transformers has it."""

from __future__ import annotations

from transformers import AutoTokenizer


def test_a_tokenizers_own_template_is_the_one_transformers_loads(client, settings):
    response = client.get("/api/templates/tokenizer", params={"tokenizer": "qwen3"})
    assert response.status_code == 200
    reference = AutoTokenizer.from_pretrained(settings.assets_dir / "qwen3")
    assert response.json() == {"tokenizer": "qwen3", "source": reference.chat_template}


def test_a_tokenizer_without_a_template_is_a_404_naming_it(client):
    response = client.get("/api/templates/tokenizer", params={"tokenizer": "llama2"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert "'llama2' has no chat template" in error["message"] and error["field"] == "tokenizer"
