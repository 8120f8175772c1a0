"""Registry: bundled tokenizers load and agree with the raw tokenizers library; refusals."""

import os
import pickle
import shutil
import time

import pytest
from tokenizers import Tokenizer

from app.errors import InputError, UnavailableError
from app.settings import Settings
from app.tokenizers import registry
from app.tokenizers.registry import bundled_names, clear_cache, list_tokenizers, load_tokenizer

BUNDLED = ["smollm2", "qwen3", "llama3", "llama2", "mistral", "gemma3", "deepseek_v3", "gptoss"]
TEXTS = [
    "Hello world, this is Maskscope.\nSecond line\twith a tab.",
    "Ünïcödé 日本語 🦙 café, x  y   z, numbers 12345 and 3.14",
]


def test_bundled_names():
    assert bundled_names() == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_tokenizer_loads_and_round_trips(name, settings):
    tok = load_tokenizer(name, settings)
    assert tok.is_fast
    raw = Tokenizer.from_file(str(settings.assets_dir / name / "tokenizer.json"))
    for text in TEXTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ids == raw.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids) == text


@pytest.mark.parametrize(
    ("name", "text", "ids"),
    [
        # As packaged, Llama 3's tokenizer.json adds no BOS (its chat template writes it).
        ("llama3", "Hello world", [9906, 1917]),
        ("mistral", "Hello world", [1, 22557, 1526]),
        ("llama2", "Hello world", [1, 15043, 3186]),
        ("qwen3", "Hello world", [9707, 1879]),
        ("gemma3", "Hello world", [2, 9259, 1902]),
        ("smollm2", "Hello world", [19556, 905]),
        # transformers 5 loads DeepSeek-V3's byte-level tokenizer.json generically: no BOS.
        ("deepseek_v3", "Hello world", [19923, 2058]),
        ("gptoss", "Hello world", [13225, 2375]),
    ],
)
def test_known_ids_and_bos_conventions(name, text, ids, settings):
    assert load_tokenizer(name, settings)(text)["input_ids"] == ids


def test_tokenizers_are_cached_in_process(settings):
    first = load_tokenizer("qwen3", settings)
    started = time.perf_counter()
    assert load_tokenizer("qwen3", settings) is first
    assert time.perf_counter() - started < 0.05


def test_cache_is_bounded_by_its_setting(isolated_home):
    home = isolated_home("llama2", "mistral")
    small = Settings(home=home.home, tokenizer_cache_size=1)
    clear_cache()
    first = load_tokenizer("llama2", small)
    load_tokenizer("mistral", small)
    assert load_tokenizer("llama2", small) is not first


def test_refetched_asset_is_reloaded(isolated_home):
    home = isolated_home("llama2")
    first = load_tokenizer("llama2", home)
    shutil.rmtree(home.assets_dir / "llama2")
    with pytest.raises(UnavailableError, match=r"maskscope assets fetch llama2"):
        load_tokenizer("llama2", home)
    shutil.copytree(Settings.from_env().assets_dir / "llama2", home.assets_dir / "llama2")
    assert load_tokenizer("llama2", home)("grabbed")["input_ids"] == [1, 2646, 1327, 287]
    assert first is not None


def test_corrupt_asset_is_not_served(isolated_home):
    home = isolated_home("mistral")
    target = home.assets_dir / "mistral" / "tokenizer.json"
    target.write_bytes(target.read_bytes().replace(b'"<unk>"', b'"<UNK>"', 1))
    with pytest.raises(UnavailableError) as info:
        load_tokenizer("mistral", home)
    assert "does not match its recorded sha256" in info.value.message
    assert "maskscope assets fetch mistral" in info.value.message


def test_trust_remote_code_is_never_honoured(settings):
    with pytest.raises(InputError) as info:
        load_tokenizer("qwen3", settings, trust_remote_code=True)
    assert info.value.field == "trust_remote_code"


def test_unknown_name_lists_the_bundled_ones(settings):
    with pytest.raises(InputError) as info:
        load_tokenizer("llama9", settings)
    assert all(name in info.value.message for name in BUNDLED)


def test_hub_offline_is_a_4xx_that_lists_bundled_names(settings):
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        load_tokenizer("maskscope-test/definitely-not-cached", settings)
    assert info.value.status == 424
    assert "not reachable" in info.value.message and "smollm2" in info.value.message
    assert time.monotonic() - started < 30


def test_hub_disabled_names_the_setting(settings):
    with pytest.raises(UnavailableError) as info:
        load_tokenizer("Qwen/Qwen3-0.6B", Settings(home=settings.home, allow_hub=False))
    assert info.value.setting == "allow_hub"


@pytest.fixture
def root(tmp_path, settings):
    """An allowed root with one real tokenizer folder (a copy of the llama2 asset)."""
    root = tmp_path / "root"
    folder = root / "mytok"
    folder.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(settings.assets_dir / "llama2" / name, folder / name)
    return root


def _roots(settings, *roots) -> Settings:
    return Settings(home=settings.home, tokenizer_roots=list(roots))


def test_local_folder_by_name_and_by_absolute_path(root, settings):
    local = _roots(settings, root)
    assert load_tokenizer("mytok", local)("grabbed")["input_ids"] == [1, 2646, 1327, 287]
    assert load_tokenizer(str(root / "mytok"), local).is_fast
    names = [entry["name"] for entry in list_tokenizers(local) if entry["source"] == "local"]
    assert names == [str(root / "mytok")]


@pytest.mark.parametrize(
    "ref", ["../mytok", "mytok/../../etc", "/etc", "~/", "./../root/mytok", "mytok\x00", "/tmp"]
)
def test_escapes_are_refused(ref, root, settings):
    with pytest.raises(InputError):
        load_tokenizer(ref, _roots(settings, root))


def test_absolute_path_outside_roots_names_the_setting(root, settings):
    with pytest.raises(InputError) as info:
        load_tokenizer(str(settings.assets_dir / "llama2"), _roots(settings, root))
    assert info.value.setting == "tokenizer_roots"


def test_local_folders_need_configured_roots(root, settings):
    with pytest.raises(InputError) as info:
        load_tokenizer(str(root / "mytok"), settings)
    assert info.value.setting == "tokenizer_roots"


def test_symlinked_folder_leading_out_is_refused(root, settings, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(root / "mytok", outside)
    os.symlink(outside, root / "escape")
    with pytest.raises(InputError, match="outside the allowed roots"):
        load_tokenizer("escape", _roots(settings, root))


def test_symlinked_file_leading_out_is_refused(root, settings, tmp_path):
    outside = tmp_path / "secret.json"
    shutil.copy(root / "mytok" / "tokenizer.json", outside)
    (root / "mytok" / "tokenizer.json").unlink()
    os.symlink(outside, root / "mytok" / "tokenizer.json")
    with pytest.raises(InputError, match="links outside the allowed roots"):
        load_tokenizer("mytok", _roots(settings, root))


def test_symlink_inside_a_root_is_allowed(root, settings):
    os.symlink(root / "mytok", root / "alias")
    assert load_tokenizer("alias", _roots(settings, root)).is_fast


class _Tripwire:
    """Unpickling this creates a file: proof that nothing was unpickled if it stays absent."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_pickle_only_folder_is_refused_and_not_unpickled(root, settings, tmp_path):
    folder = root / "pickled"
    folder.mkdir()
    tripwire = tmp_path / "unpickled"
    for name in ("pytorch_model.bin", "vocab.pkl"):
        (folder / name).write_bytes(pickle.dumps(_Tripwire(tripwire)))
    with pytest.raises(InputError, match="only pickle files") as info:
        load_tokenizer("pickled", _roots(settings, root))
    assert "never unpickles" in info.value.message
    assert not tripwire.exists()


def test_remote_code_folder_is_refused(root, settings):
    config = root / "mytok" / "tokenizer_config.json"
    config.write_text('{"auto_map": {"AutoTokenizer": ["x.Tok", null]}}')
    with pytest.raises(InputError, match="trust_remote_code is never honoured"):
        load_tokenizer("mytok", _roots(settings, root))


def _warm_hf_cache(tmp_path, monkeypatch, repo_id: str, files: dict[str, bytes]) -> None:
    """Lay out a Hub repo in a private HF cache, in huggingface_hub's documented format."""
    import huggingface_hub.constants

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_hub_id_from_a_warm_hf_cache_works_offline(tmp_path, settings, monkeypatch):
    files = {
        name: (settings.assets_dir / "qwen3" / name).read_bytes()
        for name in ("tokenizer.json", "tokenizer_config.json")
    }
    _warm_hf_cache(tmp_path, monkeypatch, "maskscope-test/cached-qwen", files)
    tok = load_tokenizer("maskscope-test/cached-qwen", settings)
    assert tok("Hello world")["input_ids"] == [9707, 1879]
    assert load_tokenizer("maskscope-test/cached-qwen", settings) is tok


def test_hub_lookups_keep_a_used_tokenizer_from_eviction(tmp_path, isolated_home, monkeypatch):
    home = isolated_home("llama2", "mistral")
    files = {
        name: (home.assets_dir / "llama2" / name).read_bytes()
        for name in ("tokenizer.json", "tokenizer_config.json")
    }
    _warm_hf_cache(tmp_path, monkeypatch, "maskscope-test/cached-llama2", files)
    small = Settings(home=home.home, tokenizer_cache_size=2)
    clear_cache()
    hub_tok = load_tokenizer("maskscope-test/cached-llama2", small)
    bundled = load_tokenizer("llama2", small)
    assert load_tokenizer("maskscope-test/cached-llama2", small) is hub_tok  # now the newest
    load_tokenizer("mistral", small)  # evicts the least recently used: the bundled llama2
    assert ("hub", "maskscope-test/cached-llama2") in registry._cache
    assert load_tokenizer("maskscope-test/cached-llama2", small) is hub_tok
    assert load_tokenizer("llama2", small) is not bundled


def test_hub_repo_without_tokenizer_json_is_refused_by_its_id(tmp_path, settings, monkeypatch):
    _warm_hf_cache(
        tmp_path, monkeypatch, "maskscope-test/slow-only", {"tokenizer_config.json": b"{}"}
    )
    with pytest.raises(InputError, match=r"maskscope-test/slow-only has no tokenizer\.json"):
        load_tokenizer("maskscope-test/slow-only", settings)


@pytest.mark.parametrize(
    "content",
    ["not json", "{}", '{"version": "1.0", "added_tokens": [], "model": {"type": "NOPE"}}'],
)
def test_broken_tokenizer_json_is_a_clear_input_error(content, root, settings):
    (root / "mytok" / "tokenizer.json").write_text(content)
    with pytest.raises(InputError, match="could not be loaded as a tokenizer"):
        load_tokenizer("mytok", _roots(settings, root))


def test_gptoss_gets_the_harmony_template_its_project_publishes(settings):
    """The npm gpt-oss tokenizer ships no chat template; TRL's gptoss.jinja is its template."""
    from app.assets.zoo import zoo_templates
    from tests.helpers.assets import require_asset

    path = require_asset(
        zoo_templates(settings.assets_dir).get("trl/gptoss")
        or settings.assets_dir / "templates-trl" / "gptoss.jinja",
        "templates-trl",
    )
    tokenizer = load_tokenizer("gptoss", settings)
    assert tokenizer.chat_template == path.read_text(encoding="utf-8")
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert text.startswith("<|start|>system<|message|>")
    entry = next(e for e in list_tokenizers(settings) if e["name"] == "gptoss")
    assert entry["has_chat_template"] is True
