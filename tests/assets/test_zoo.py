"""The template zoo: every `.jinja` the pinned wheels ship is named, installed and verified."""

from __future__ import annotations

import zipfile

import pytest

from app.assets.archives import ArchiveError
from app.assets.fetch import download
from app.assets.manifest import TEMPLATE_SETS, TemplateSet, get_asset
from app.assets.store import check_asset
from app.assets.wheel_files import build_templates
from app.assets.zoo import training_twin, zoo_names, zoo_templates
from tests.helpers.assets import require_asset


def test_the_zoo_names_trls_72_and_axolotls_36_templates():
    names = zoo_names()
    assert len(names) == len(set(names)) == 108
    assert sum(n.startswith("trl/") for n in names) == 72
    assert sum(n.startswith("axolotl/") for n in names) == 36
    assert {"trl/qwen3", "trl/qwen3_training", "trl/gptoss", "axolotl/llama4"} <= set(names)


@pytest.mark.parametrize(
    ("name", "twin"),
    [
        ("trl/qwen3", "trl/qwen3_training"),
        ("trl/lfm2_v2", "trl/lfm2_v2_training"),
        ("trl/qwen3_training", None),
        ("trl/llama3_1", None),  # TRL ships one llama3 twin, for llama3
        ("axolotl/qwen3", None),
        ("trl/nonexistent", None),
    ],
)
def test_training_twin(name, twin):
    assert training_twin(name) == twin


def test_every_trl_twin_has_an_original():
    twins = [n for n in zoo_names() if n.endswith("_training")]
    assert len(twins) == 31
    assert all(training_twin(n.removesuffix("_training")) == n for n in twins)


@pytest.mark.parametrize("template_set", TEMPLATE_SETS, ids=lambda s: s.project)
def test_the_manifest_lists_every_template_the_wheel_ships(template_set, tmp_path):
    wheel = download(get_asset(template_set.asset).source, tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        shipped = {
            n.removeprefix(template_set.folder)
            for n in zf.namelist()
            if n.startswith(template_set.folder) and n.endswith(".jinja")
        }
    assert shipped == set(template_set.files)


def test_installed_zoo_maps_names_to_verified_files(settings):
    for template_set in TEMPLATE_SETS:
        require_asset(settings.assets_dir / template_set.asset, template_set.asset)
    found = zoo_templates(settings.assets_dir)
    assert list(found) == zoo_names()
    assert found["trl/qwen3"].name == "qwen3.jinja"
    assert "{% generation %}" in found["trl/qwen3_training"].read_text(encoding="utf-8")
    assert "<|channel|>" in found["trl/gptoss"].read_text(encoding="utf-8")


def test_a_set_that_is_not_fetched_is_left_out(isolated_home):
    home = isolated_home("templates-axolotl")
    found = zoo_templates(home.assets_dir)
    assert found and all(name.startswith("axolotl/") for name in found)
    (home.assets_dir / "templates-axolotl" / "llama4.jinja").write_text("{{ 1 }}")
    assert zoo_templates(home.assets_dir) == {}
    assert check_asset(get_asset("templates-axolotl"), home.assets_dir).status == "corrupt"


def _wheel(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_builder_copies_the_named_templates_only(tmp_path):
    template_set = TemplateSet("demo", "demo/templates/", ("a", "b"))
    wheel = _wheel(
        tmp_path / "demo.whl",
        {
            "demo/templates/a.jinja": "{{ 'a' }}",
            "demo/templates/b.jinja": "{{ 'b' }}",
            "demo/templates/c.jinja": "{{ 'c' }}",
            "demo/__init__.py": "",
        },
    )
    out = tmp_path / "out"
    out.mkdir()
    assert build_templates(template_set, wheel, out, tmp_path) == {"templates": 2}
    assert sorted(p.name for p in out.iterdir()) == ["a.jinja", "b.jinja"]
    assert (out / "b.jinja").read_text() == "{{ 'b' }}"


def test_builder_refuses_a_missing_or_binary_template(tmp_path):
    template_set = TemplateSet("demo", "demo/templates/", ("a",))
    out = tmp_path / "out"
    out.mkdir()
    empty = _wheel(tmp_path / "empty.whl", {"demo/x.py": ""})
    with pytest.raises(ArchiveError, match=r"has no demo/templates/a\.jinja"):
        build_templates(template_set, empty, out, tmp_path)
    binary = _wheel(tmp_path / "binary.whl", {"demo/templates/a.jinja": b"\xff\xfe{{"})
    with pytest.raises(ArchiveError, match="not UTF-8"):
        build_templates(template_set, binary, out, tmp_path)
