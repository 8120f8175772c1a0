"""Settings as data: every limit is a (name, default, help) entry, overridable by MASKSCOPE_<NAME>.

Error messages name the setting to change ("... is limited by the max_tokens setting"), and a test
checks that every setting is documented in the README.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _setting(default: Any, help: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def _default_home() -> Path:
    return Path(os.path.expanduser("~/.cache/maskscope"))


# Long: settings are data, one (name, default, help) entry each, read in one place; a class per
# area would scatter the README's settings table across modules.
@dataclass
class Settings:
    home: Path = _setting(
        _default_home(), "Cache folder for offline assets, job database and artifacts."
    )
    host: str = _setting("127.0.0.1", "Address `maskscope serve` binds to.")
    port: int = _setting(8000, "Port `maskscope serve` listens on.")
    allowed_hosts: list[str] = _setting(
        ["localhost", "127.0.0.1", "::1"],
        "Host header names (comma-separated, any port) the server answers; the `host` setting is "
        "always added, `*` allows any. Others get 400, so DNS rebinding cannot reach the API.",
    )
    token: str = _setting(
        "",
        "Secret every request but /healthz must present (Authorization: Bearer, or the cookie the "
        "login URL printed at start-up sets); empty: no token, and `serve` refuses a non-loopback "
        "host unless given --insecure-public.",
    )
    request_header_timeout_s: int = _setting(
        10, "Seconds a connection may take to send a request's headers before it is closed."
    )
    idle_timeout_s: int = _setting(
        5, "Seconds an idle keep-alive connection stays open between requests."
    )
    tokenizer_roots: list[Path] = _setting(
        [], "Folders (os.pathsep-separated) under which local tokenizer directories may be opened."
    )
    allow_hub: bool = _setting(
        True, "Whether Hugging Face Hub ids may be resolved (needs network or a warm HF cache)."
    )
    allow_tokenizer_regex: bool = _setting(
        False,
        "Whether a local or Hub tokenizer may run pre-tokenizer/normalizer regexes no bundled "
        "tokenizer runs (they run in the server unbounded: only for tokenizers you trust).",
    )
    tokenizer_cache_size: int = _setting(
        16, "Most loaded tokenizers kept in memory (least recently used dropped)."
    )
    max_body_bytes: int = _setting(4_000_000, "Largest JSON request body, in bytes.")
    max_upload_bytes: int = _setting(512_000_000, "Largest uploaded dataset file, in bytes.")
    max_upload_rows: int = _setting(200_000, "Most rows read from one uploaded dataset.")
    max_line_bytes: int = _setting(
        16_000_000, "Longest line of an uploaded JSONL dataset, in bytes."
    )
    inspect_probe_rows: int = _setting(
        3, "Dataset rows on which the re-rendering lints (prefix stability, train/inference) run."
    )
    inspect_max_row_reports: int = _setting(
        2_000, "Most rows with findings listed in one inspection result (the summary counts all)."
    )
    inspect_keep_runs: int = _setting(
        8, "Uploaded datasets the /inspect page keeps on disk for drilling into rows."
    )
    inspect_workers: int = _setting(
        0, "Processes that inspect one dataset (0: one per core, at most 8, for files over 8 MB)."
    )
    max_running_inspections: int = _setting(
        1, "Inspections with worker processes running at once; more wait their turn."
    )
    max_inspect_disk_bytes: int = _setting(
        4_000_000_000,
        "Most bytes the /inspect page's stored uploads may take on disk; uploads beyond get 507.",
    )
    max_messages: int = _setting(2_000, "Most messages in one conversation.")
    max_chars: int = _setting(1_000_000, "Most characters of message content in one conversation.")
    max_tokens: int = _setting(65_536, "Most tokens in one rendered conversation.")
    max_template_bytes: int = _setting(65_536, "Largest custom Jinja chat template, in bytes.")
    max_render_chars: int = _setting(
        4_000_000, "Largest output a template may produce, in characters."
    )
    render_timeout_ms: int = _setting(
        2_000, "Wall-clock limit for rendering one untrusted template, in ms."
    )
    max_range: int = _setting(100_000, "Largest range() an untrusted template may create.")
    template_workers: int = _setting(
        2, "Warm worker processes that render untrusted templates (each is killed on timeout)."
    )
    max_worker_memory_mb: int = _setting(
        512, "Memory one template worker may allocate while rendering one template, in MiB."
    )
    max_compare_targets: int = _setting(8, "Most tokenizer+dialect columns in one comparison.")
    max_batch_conversations: int = _setting(64, "Most conversations in one /api/batch request.")
    max_queued_jobs: int = _setting(
        8, "Most fine-tune jobs waiting or running at once; more get 429."
    )
    max_train_steps: int = _setting(5_000, "Most optimizer steps one fine-tune job may ask for.")
    max_train_length: int = _setting(
        4_096, "Longest training sequence a job may ask for, in tokens."
    )
    max_train_conversations: int = _setting(
        20_000, "Most inline conversations in one fine-tune job."
    )
    max_sample_prompt_tokens: int = _setting(
        512, "Longest sample prompt a fine-tune job answers before and after training, in tokens."
    )
    max_event_streams: int = _setting(
        32, "Most job event streams (SSE) open at once (each polls the job database); more get 429."
    )
    max_event_streams_per_job: int = _setting(
        8, "Most event streams (SSE) open at once on one job; more get 429."
    )
    job_retention_days: int = _setting(
        30, "Days a finished job's files and row are kept (pruned at start-up and hourly; 0: keep)."
    )
    max_job_artifacts_bytes: int = _setting(
        20_000_000_000, "Most bytes of job artifacts on disk; new jobs beyond it get 507."
    )
    max_score_tokens: int = _setting(
        16_384, "Most tokens one scoring request runs through the model (one forward pass)."
    )
    score_model_cache_size: int = _setting(
        2,
        "Models kept loaded for scoring (least recently used dropped); 2 lets a job's model "
        "and its base model stay side by side for before/after.",
    )
    score_wait_s: int = _setting(
        30, "Seconds a scoring request waits for the model device to be free before a 429."
    )
    max_score_rows: int = _setting(
        2_000,
        "Most dataset rows one ranking by loss (`maskscope score --dataset`, /inspect) scores.",
    )
    lint_min_stop_probability: float = _setting(
        0.2,
        "model-does-not-stop: a trained end-of-turn marker the model gives less than this "
        "probability is flagged.",
    )
    lint_max_token_loss: float = _setting(
        12.0,
        "extreme-token-loss: trained tokens whose loss (-log p, in nats) is above this are "
        "flagged.",
    )

    @property
    def assets_dir(self) -> Path:
        return self.home / "assets"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def db_path(self) -> Path:
        return self.home / "maskscope.sqlite3"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from MASKSCOPE_* variables, then explicit overrides.

        Example: MASKSCOPE_MAX_TOKENS=1000 -> Settings(max_tokens=1000)
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"MASKSCOPE_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f, raw)
        values.update(overrides)
        return cls(**values)


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "Path":
        return Path(os.path.expanduser(raw))
    if kind == "list[str]":
        return [name.strip() for name in raw.split(",") if name.strip()]
    if kind.startswith("list"):
        return [Path(os.path.expanduser(p)) for p in raw.split(os.pathsep) if p]
    return raw


def describe() -> list[tuple[str, Any, str]]:
    """(name, default, help) for every setting, for docs and the README table."""
    defaults = Settings()
    return [
        (f.name, getattr(defaults, f.name), f.metadata["help"])
        for f in dataclasses.fields(Settings)
    ]
