"""The zoo checks of one template on one conversation, as outcomes the tests and the table
share: the text equals `apply_chat_template`; trained = generated (tests/zoo/reference.py); on a
template with {% generation %} tags, trained positions equal transformers' assistant mask, and
how the tags compare with the rule.

Renders are cached for the process, so each template × conversation is rendered once by
transformers and once by Maskscope whichever checks ask for it.

Example: check_text("trl/cohere2", "system") -> Outcome("pass");
         check_generated("trl/cohere2", "system") -> Outcome("fail", "trained by the reference
         only (12 token(s)): '|END_RESPONSE|><|END_OF_TURN_TOKEN|>'")
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.chat.messages import parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokens import IGNORE_INDEX, Rendering
from app.dialects.registry import get_dialect
from app.errors import MaskscopeError
from tests.helpers.tokenizers import bundled
from tests.zoo.conversations import CONVERSATIONS, Messages, ZooConversation
from tests.zoo.reference import Reference, ReferenceError, generated_turns, stop_strings
from tests.zoo.reference import trained_positions as reference_positions
from tests.zoo.templates import template_source, tokenizer_for

Status = Literal["pass", "fail", "skip"]
# The engine's input grows a `tools` field in RenderSpec; until then the tools list cannot reach
# the template, and conversations that need it are skipped rather than compared unfairly.
ENGINE_TAKES_TOOLS = "tools" in {f.name for f in dataclasses.fields(RenderSpec)}
NO_TOOLS = (
    "Maskscope's RenderSpec has no `tools` field yet, so the tools list cannot reach the "
    "template (tool_call_no_tools renders the same turns without it)"
)
_GENERATION_TAG = re.compile(r"{%-?\s*generation\s*-?%}")


def is_tagged(template: str) -> bool:
    """Whether the template marks its trained text with {% generation %} tags itself."""
    return bool(_GENERATION_TAG.search(template_source(template)))


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str = ""
    notes: tuple[str, ...] = field(default=())  # what the reference had to guess or record


TAGS_DECIDE = (
    "the template's own {% generation %} tags decide what is trained "
    "(test_tagged_template_trains_its_assistant_mask); how they differ from trained = generated "
    "is listed in test_zoo.TAG_CONVENTIONS"
)


@dataclass(frozen=True)
class _Refusal:
    """What a render raised instead of returning (kept so the cache remembers failures too)."""

    message: str


def _hf_kwargs(conv: ZooConversation) -> dict[str, Any]:
    return {"tools": conv.tools} if conv.tools else {}


@functools.cache
def _hf_text(template: str, conv_name: str, messages_json: str, generation_prompt: bool) -> Any:
    conv = CONVERSATIONS[conv_name]
    try:
        return bundled(tokenizer_for(template)).apply_chat_template(
            json.loads(messages_json),
            chat_template=template_source(template),
            tokenize=False,
            add_generation_prompt=generation_prompt,
            **_hf_kwargs(conv),
        )
    except Exception as exc:  # the template's raise_exception, or a Jinja error
        return _Refusal(f"{type(exc).__name__}: {exc}")


def hf_text(template: str, conv: ZooConversation, messages: Messages, gen: bool) -> str:
    """apply_chat_template(tokenize=False); raises ReferenceError naming what transformers said."""
    made = _hf_text(template, conv.name, json.dumps(messages, ensure_ascii=False), gen)
    if isinstance(made, _Refusal):
        raise ReferenceError(made.message)
    return str(made)


@functools.cache
def maskscope_render(template: str, conv_name: str) -> Rendering | _Refusal:
    """Maskscope's rendering under dialect custom, train_on=assistant, train_on_eot."""
    conv = CONVERSATIONS[conv_name]
    tools = {"tools": conv.tools} if ENGINE_TAKES_TOOLS and conv.tools else {}
    spec = RenderSpec(
        tokenizer=tokenizer_for(template),
        dialect="custom",
        template=template_source(template),
        train_on="assistant",
        train_on_eot=True,
        **tools,
    )
    try:
        conversation = parse_messages(conv.messages)
        return render(conversation, get_dialect("custom"), bundled(spec.tokenizer), spec)
    except MaskscopeError as exc:
        return _Refusal(f"{type(exc).__name__}: {exc.message}")


def _precondition(template: str, conv: ZooConversation) -> Outcome | None:
    if conv.tools and not ENGINE_TAKES_TOOLS:
        return Outcome("skip", NO_TOOLS)
    try:
        hf_text(template, conv, conv.messages, False)
    except ReferenceError as exc:
        return Outcome("skip", f"transformers refuses it: {exc}")
    return None


def _first_difference(want: str, got: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), None)
    at = min(len(want), len(got)) if at is None else at
    return (
        f"texts part at character {at}: apply_chat_template has {want[at - 20 : at + 40]!r}, "
        f"Maskscope {got[at - 20 : at + 40]!r}"
    )


def check_text(template: str, conv_name: str) -> Outcome:
    """Maskscope's text equals apply_chat_template(messages, tools=..., tokenize=False)."""
    conv = CONVERSATIONS[conv_name]
    if (blocked := _precondition(template, conv)) is not None:
        return blocked
    want = hf_text(template, conv, conv.messages, False)
    made = maskscope_render(template, conv_name)
    if isinstance(made, _Refusal):
        return Outcome("fail", f"Maskscope refuses what transformers renders: {made.message}")
    if made.text != want:
        return Outcome("fail", _first_difference(want, made.text))
    return Outcome("pass")


def trained_positions(rendering: Rendering) -> set[int]:
    return {i for i, label in enumerate(rendering.labels) if label != IGNORE_INDEX}


def describe_difference(
    pieces: Sequence[str], want: set[int], got: set[int], names: tuple[str, str]
) -> str:
    """The differing positions as runs of token text, e.g. "trained by Maskscope only
    (1 token): '\\n'", where `names` says whose `want` and `got` are."""
    parts = []
    for name, positions in ((names[0], want - got), (names[1], got - want)):
        if positions:
            runs = [repr("".join(pieces[i] for i in run)) for run in _runs(sorted(positions))]
            shown = ", ".join(runs[:6]) + (f" and {len(runs) - 6} more" if len(runs) > 6 else "")
            parts.append(f"trained by {name} only ({len(positions)} token(s)): {shown}")
    return "; ".join(parts)


def _runs(positions: Iterable[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in positions:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def reference_for(template: str, conv: ZooConversation) -> Reference:
    """The rule's generated turns for this template and conversation (ReferenceError: a prefix
    render that the rule needs was refused by the template)."""
    tok = bundled(tokenizer_for(template))
    return generated_turns(
        lambda messages, gen: hf_text(template, conv, messages, gen),
        conv.messages,
        stop_strings(tok.eos_token),
    )


def _notes(reference: Reference) -> tuple[str, ...]:
    notes = []
    for turn in reference.turns:
        if turn.prompt_mismatch:
            notes.append(f"message {turn.message}: the text does not start with its prompt")
        if turn.marker is None:
            notes.append(f"message {turn.message}: no end-of-turn marker")
    return tuple(notes)


def check_generated(template: str, conv_name: str) -> Outcome:
    """Maskscope's trained positions equal the tokens overlapping the rule's generated spans."""
    conv = CONVERSATIONS[conv_name]
    if (blocked := _precondition(template, conv)) is not None:
        return blocked
    if is_tagged(template):
        return Outcome("skip", TAGS_DECIDE)
    if check_text(template, conv_name).status != "pass":
        return Outcome("skip", "the text differs from apply_chat_template (see test_text)")
    try:
        reference = reference_for(template, conv)
    except ReferenceError as exc:
        return Outcome("skip", f"a prefix render the rule needs is refused: {exc}")
    made = maskscope_render(template, conv_name)
    assert not isinstance(made, _Refusal)
    tok = bundled(tokenizer_for(template))
    enc = tok(reference.text, add_special_tokens=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) != made.input_ids:
        return Outcome("fail", "Maskscope's ids differ from the tokenizer's on the same text")
    want = reference_positions(enc["offset_mapping"], reference.spans)
    got = trained_positions(made)
    notes = _notes(reference)
    if want == got:
        return Outcome("pass", notes=notes)
    pieces = [reference.text[a:b] for a, b in enc["offset_mapping"]]
    detail = describe_difference(pieces, want, got, ("the reference", "Maskscope"))
    return Outcome("fail", detail, notes)


@functools.cache
def _hf_mask(twin: str, conv_name: str) -> Any:
    conv = CONVERSATIONS[conv_name]
    try:
        out = bundled(tokenizer_for(twin)).apply_chat_template(
            conv.messages,
            chat_template=template_source(twin),
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
            **_hf_kwargs(conv),
        )
    except Exception as exc:  # the template's raise_exception, or a Jinja error
        return _Refusal(f"{type(exc).__name__}: {exc}")
    return list(out["input_ids"]), list(out["assistant_masks"])


def check_twin(twin: str, conv_name: str) -> Outcome:
    """On a tagged TRL twin, Maskscope's trained positions equal transformers' assistant mask."""
    conv = CONVERSATIONS[conv_name]
    if (blocked := _precondition(twin, conv)) is not None:
        return blocked
    hf = _hf_mask(twin, conv_name)
    if isinstance(hf, _Refusal):
        return Outcome("skip", f"transformers refuses the assistant mask: {hf.message}")
    ids, mask = hf
    made = maskscope_render(twin, conv_name)
    if isinstance(made, _Refusal):
        return Outcome("fail", f"Maskscope refuses what transformers renders: {made.message}")
    if made.input_ids != ids:
        return Outcome("fail", "Maskscope's ids differ from apply_chat_template(tokenize=True)")
    want = {i for i, m in enumerate(mask) if m}
    got = trained_positions(made)
    if want == got:
        return Outcome("pass")
    pieces = [t.text for t in made.tokens]
    return Outcome("fail", describe_difference(pieces, want, got, ("the mask", "Maskscope")))


def check_tags_against_rule(twin: str, conv_name: str) -> Outcome:
    """Whether transformers' assistant mask on a tagged template marks what the rule calls
    generated (a difference is a convention of the template's tags, not a Maskscope defect)."""
    conv = CONVERSATIONS[conv_name]
    if (blocked := _precondition(twin, conv)) is not None:
        return blocked
    hf = _hf_mask(twin, conv_name)
    if isinstance(hf, _Refusal):
        return Outcome("skip", f"transformers refuses the assistant mask: {hf.message}")
    try:
        reference = reference_for(twin, conv)
    except ReferenceError as exc:
        return Outcome("skip", f"a prefix render the rule needs is refused: {exc}")
    ids, mask = hf
    tok = bundled(tokenizer_for(twin))
    enc = tok(reference.text, add_special_tokens=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) != ids:
        return Outcome("fail", "the text's ids differ from apply_chat_template(tokenize=True)")
    want = reference_positions(enc["offset_mapping"], reference.spans)
    got = {i for i, m in enumerate(mask) if m}
    if want == got:
        return Outcome("pass", notes=_notes(reference))
    pieces = [reference.text[a:b] for a, b in enc["offset_mapping"]]
    detail = describe_difference(pieces, want, got, ("the rule", "the tags"))
    return Outcome("fail", detail, _notes(reference))
