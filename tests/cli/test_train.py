"""`maskscope train`: spec file + flags, refusal of an invalid spec, a foreground run."""

from __future__ import annotations

import json

from app.cli import build_parser, main
from app.cli.train import build_spec


def test_flags_override_the_spec_file(tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"steps": 7, "seed": 3, "neftune_alpha": 10}))
    data = tmp_path / "data.jsonl"
    data.write_text(
        json.dumps(
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
        )
        + "\n"
    )
    args = build_parser().parse_args(
        ["train", "--spec", str(spec_file), "--steps", "2", "--pack", "--data", str(data)]
    )
    spec = build_spec(args)
    assert (spec.steps, spec.seed, spec.neftune_alpha, spec.pack) == (2, 3, 10.0, True)
    assert spec.data.conversations[0]["messages"][1]["content"] == "b"


def test_invalid_spec_exits_2(monkeypatch, tmp_path):
    monkeypatch.setenv("MASKSCOPE_HOME", str(tmp_path))
    assert main(["train", "--neftune-alpha", "-1"]) == 2
    assert main(["train", "--dialect", "klingon"]) == 2


def test_foreground_run_saves_a_model(monkeypatch, tmp_path, tiny_model_dir):
    monkeypatch.setenv("MASKSCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MASKSCOPE_TOKENIZER_ROOTS", str(tiny_model_dir.parent))
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model",
            str(tiny_model_dir),
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--max-length",
            "64",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[-1]["status"] == "succeeded"
    assert (out / "model" / "model.safetensors").is_file()
