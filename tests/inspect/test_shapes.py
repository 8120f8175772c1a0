"""Row shapes as TRL reads them: prompt/completion (conversational and plain) checked against
TRL's own SFT and DPO dataset preparation on a real tokenizer; preference rows with an explicit
and an implicit prompt; KTO rows; OpenAI per-message weights."""

from __future__ import annotations

import io
import json
import types

import datasets
import pytest

from app.inspect.evaluator import RowEvaluator
from app.inspect.pipeline import inspect_stream
from app.inspect.reader import RawRow
from app.inspect.shapes import preference_of, shape_of
from app.service.inspect import prepare
from app.settings import Settings
from tests.helpers.tokenizers import fresh

U = {"role": "user", "content": "What is 2+2?"}
A = {"role": "assistant", "content": "It is 4."}
B = {"role": "assistant", "content": "It is 5."}
SYSTEM = {"role": "system", "content": "Answer briefly."}


def options(tokenizer="qwen3", dialect="tokenizer", **kw):
    return prepare(Settings.from_env(), tokenizer=tokenizer, dialect=dialect, **kw)


def inspect_rows(rows, opts):
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    out = io.StringIO()
    result = inspect_stream(io.BytesIO(data), opts, export=out).result()
    return result, [json.loads(line) for line in out.getvalue().splitlines()]


def trl_prepared(trainer_cls, config_cls, rows, tokenizer, **extra):
    """TRL's own dataset preparation (its `_prepare_dataset`) on `rows`, without a model: the
    method reads only these attributes of its trainer."""
    datasets.disable_caching()
    args = config_cls(output_dir="/tmp/maskscope-trl", report_to=[], use_cpu=True, **extra)
    stand_in = types.SimpleNamespace(
        _tokenizer=tokenizer, args=args, chat_template=None, completion_only_loss=True
    )
    dataset = datasets.Dataset.from_list(rows)
    prepared = trainer_cls._prepare_dataset(
        stand_in, dataset, tokenizer, args, *extra_args(trainer_cls)
    )
    return list(prepared)


def extra_args(trainer_cls):
    return (False, None, "train") if trainer_cls.__name__ == "SFTTrainer" else ("train",)


@pytest.mark.parametrize("name", ["qwen3", "smollm2"])
def test_conversational_prompt_completion_equals_trl_sft(name):
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"prompt": [U], "completion": [A]},
        {
            "prompt": [SYSTEM, U, A, U],
            "completion": [B],
        },  # a multi-turn prompt: its answer not trained
    ]
    tokenizer = fresh(name)
    theirs = trl_prepared(SFTTrainer, SFTConfig, rows, tokenizer)
    result, ours = inspect_rows(rows, options(name))
    assert result["summary"]["shapes"] == {"prompt_completion": 2}
    for mine, trl in zip(ours, theirs, strict=True):
        assert mine["input_ids"] == trl["input_ids"]
        trained = [label != -100 for label in mine["labels"]]
        completion = [label != -100 for label in trl["labels"]]
        # TRL trains everything after the prompt, the glue after the last end-of-turn too;
        # we train what the model generates (DESIGN §4): the two differ by that glue only.
        glue = [i for i, (a, b) in enumerate(zip(trained, completion, strict=True)) if a != b]
        assert all(completion[i] and not trained[i] for i in glue)
        assert tokenizer.decode([mine["input_ids"][i] for i in glue]).strip() == ""
        assert glue == list(range(len(trained) - len(glue), len(trained)))


def test_plain_prompt_completion_equals_trl_sft():
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"prompt": "The sky is", "completion": " blue."},
        {"prompt": "Two plus two is", "completion": " four.<|im_end|>"},  # EOS already there
    ]
    tokenizer = fresh("qwen3")
    theirs = trl_prepared(SFTTrainer, SFTConfig, rows, tokenizer)
    result, ours = inspect_rows(rows, options("qwen3"))
    assert result["summary"]["bad_rows"] == 0
    for mine, trl in zip(ours, theirs, strict=True):
        assert mine["input_ids"] == trl["input_ids"]
        assert [label != -100 for label in mine["labels"]] == [
            label != -100 for label in trl["labels"]
        ]


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": [U], "chosen": [A], "rejected": [B]},
        {"chosen": [U, A], "rejected": [U, B]},  # implicit prompt
        {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
        {"chosen": "The sky is blue.", "rejected": "The sky is green."},  # implicit, plain
    ],
)
def test_preference_export_equals_trl_dpo(row):
    from trl import DPOConfig, DPOTrainer

    tokenizer = fresh("qwen3")
    (theirs,) = trl_prepared(DPOTrainer, DPOConfig, [row], tokenizer)
    result, (mine,) = inspect_rows([row], options("qwen3"))
    assert result["summary"]["shapes"] == {"preference": 1}
    for key in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert mine[key] == theirs[key], key


def test_implicit_prompt_is_trls():
    from trl.data_utils import extract_prompt

    for row in (
        {"chosen": [U, A], "rejected": [U, B]},
        {"chosen": "The sky is blue.", "rejected": "The sky is green."},
    ):
        pref = preference_of(row)
        assert pref.implicit
        assert {"prompt": pref.prompt, "chosen": pref.chosen, "rejected": pref.rejected} == (
            extract_prompt(row)
        )


def test_shapes_are_told_apart():
    assert shape_of({"messages": []}) == "conversation"
    assert shape_of({"prompt": "a", "completion": "b"}) == "prompt_completion"
    assert shape_of({"prompt": "a", "completion": "b", "label": True}) == "kto"
    assert shape_of({"prompt": "a", "chosen": "b", "rejected": "c"}) == "preference"
    assert shape_of({"input_ids": [1]}) == "tokenized"


def test_preference_row_trains_only_the_answers():
    result, _ = inspect_rows(
        [{"prompt": [U], "chosen": [A], "rejected": [B]}], options(dialect="chatml")
    )
    ev = RowEvaluator(options(dialect="chatml"))
    sides = ev.drill(RawRow(1, 0, {"prompt": [U], "chosen": [A], "rejected": [B]}))
    assert [title for title, _, _ in sides] == ["chosen", "rejected"]
    tokenizer = fresh("qwen3")
    for (_, rendering, _), answer in zip(sides, (A, B), strict=True):
        trained = [
            i
            for i, label in zip(rendering.input_ids, rendering.labels, strict=True)
            if label != -100
        ]
        assert tokenizer.decode(trained) == answer["content"] + "<|im_end|>"
    assert result["summary"]["trained_tokens"] == 2 * len(tokenizer("It is 4.<|im_end|>").input_ids)


def test_kto_rows_need_a_boolean_label():
    rows = [
        {"prompt": [U], "completion": [A], "label": True},
        {"prompt": [U], "completion": [B], "label": False},
        {"prompt": [U], "completion": [B], "label": "no"},
    ]
    result, exported = inspect_rows(rows, options())
    assert result["summary"]["shapes"] == {"kto": 2} and result["summary"]["bad_rows"] == 1
    assert (result["summary"]["kto_desirable"], result["summary"]["kto_undesirable"]) == (1, 1)
    assert "label is 'no'" in result["summary"]["errors"][0]["message"]
    assert len(exported) == 2


def test_openai_weight_zero_is_not_trained():
    history = {"role": "assistant", "content": "It is 5.", "weight": 0}
    rows = [{"messages": [U, history, {"role": "user", "content": "Sure?"}, {**A, "weight": 1}]}]
    _, (mine,) = inspect_rows(rows, options(dialect="chatml"))
    tokenizer = fresh("qwen3")
    trained = [
        i for i, label in zip(mine["input_ids"], mine["labels"], strict=True) if label != -100
    ]
    assert tokenizer.decode(trained) == "It is 4.<|im_end|>"
