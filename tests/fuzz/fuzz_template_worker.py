"""Coverage-guided fuzzing (atheris/libFuzzer) of what a template worker runs for a request.

Each input is a chat template (mutated from real ones). It is rendered exactly as a worker renders
it -- the product's sandboxed environment, the output cap, `execute` and `encode_reply` -- but
in-process, so libFuzzer sees the coverage of jinja2 and app.templating. A finding is:
  - an exception escaping the worker's error mapping or the JSON reply encoding;
  - a reply whose error kind is not an app.errors class or whose message is empty;
  - a non-limit exception raised from inside the limit checks themselves (a bug in a check);
  - a render slower than libFuzzer's -timeout (a bomb the limits let through).

Short run (what `make test` does through tests/fuzz/test_atheris_short.py):
    .venv/bin/python tests/fuzz/fuzz_template_worker.py -runs=1500 -timeout=10 /tmp/corpus
Longer run, e.g. an hour, keeping the grown corpus for the next run:
    mkdir -p ~/.cache/maskscope/fuzz-corpus
    .venv/bin/python tests/fuzz/fuzz_template_worker.py -max_total_time=3600 -timeout=10 \
        -max_len=4096 -jobs=2 ~/.cache/maskscope/fuzz-corpus
An empty corpus folder is seeded with real chat templates first. Crashes are written as crash-*
files in the working directory; replay one with `... fuzz_template_worker.py crash-<hash>`.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["jinja2", "app.templating", "app.errors", "markupsafe"]):
    import jinja2

    from app import errors
    from app.templating import limits, worker

MAX_RANGE = 64
MAX_CHARS = 20_000
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi <|im_end|> {{ 7*7 }}"},
    {"role": "assistant", "content": "Hello!"},
]
SEEDS = {
    "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "llama3": "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}",
    "llama2": "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}"
    "{% set msgs = messages[1:] %}{% else %}{% set msgs = messages %}{% endif %}"
    "{% for m in msgs %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('roles must alternate') }}{% endif %}{% if m['role'] == 'user' %}"
    "{{ bos_token ~ '[INST] ' ~ m['content'] | trim ~ ' [/INST]' }}{% else %}"
    "{{ ' ' ~ m['content'] | trim ~ ' ' ~ eos_token }}{% endif %}{% endfor %}",
    "gemma": "{% for m in messages %}{% set role = 'model' if m.role == 'assistant' else m.role %}"
    "{{ '<start_of_turn>' ~ role ~ '\\n' ~ (m.content | trim) ~ '<end_of_turn>\\n' }}"
    "{% endfor %}{{ messages | tojson }}{{ ns }}",
    "ops": "{% set ns = namespace(s='ab', n=3) %}{% for i in range(5) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% set ns.n = ns.n ** 2 %}{% endfor %}"
    "{{ ns.s | length }} {{ ns.n }} "
    "{{ 'x' * 7 }}{{ '%5d' % 3 }}{{ 'a' | center(9) }}{{ ['p', 'q'] | join('-') }}",
}


def _environment() -> jinja2.Environment:
    try:
        from app.templating.sandbox import build_environment
    except ImportError:  # the product environment is optional for this target
        return limits.LimitedSandboxedEnvironment(max_range=MAX_RANGE, max_output_chars=MAX_CHARS)
    return build_environment(MAX_RANGE, MAX_CHARS)


ENV = _environment()


def render(source: str) -> str:
    template = ENV.from_string(source)
    return limits.render_limited(
        template,
        MAX_CHARS,
        {
            "messages": MESSAGES,
            "add_generation_prompt": True,
            "bos_token": "<s>",
            "eos_token": "</s>",
        },
    )


def _raised_inside_a_check(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename == limits.__file__


def test_one_input(data: bytes) -> None:
    source = data.decode("utf-8", "replace")
    check_bugs: list[BaseException] = []

    def task() -> str:
        try:
            return render(source)
        except Exception as exc:
            if not isinstance(exc, errors.MaskscopeError) and _raised_inside_a_check(exc):
                check_bugs.append(exc)
            raise

    reply = worker.execute(task)
    if check_bugs:
        raise check_bugs[0]
    decoded = json.loads(worker.encode_reply(reply))
    if "error" in decoded:
        failure = decoded["error"]
        kind = getattr(errors, failure["kind"], None)
        assert isinstance(kind, type) and issubclass(kind, errors.MaskscopeError), failure
        assert failure["message"].strip(), failure
    else:
        assert isinstance(decoded["ok"], str)


def _seed(corpus: Path) -> None:
    if corpus.is_dir() and not any(corpus.iterdir()):
        for name, source in SEEDS.items():
            (corpus / f"seed-{name}").write_text(source, encoding="utf-8")


def main() -> None:
    for arg in sys.argv[1:]:
        if not arg.startswith("-"):
            _seed(Path(arg))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
