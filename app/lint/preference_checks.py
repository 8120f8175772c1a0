"""Checks of a preference row (DPO and its kin): the prompt and its two answers, rendered or
tokenized as TRL does, compared with each other.

Each side is the prompt followed by one answer (chosen or rejected); `answer_start` is where
the answer begins (the prompt's common prefix with it, TRL's `common_prefix_length`).

Example: run_checks(PairContext(chosen=side_c, rejected=side_r, prompt_ids=[...], ...),
                    ("preference",)) -> [Finding("preference-prompt-not-prefix", ...)]

Design concession: the pair is linted on ids, trained flags and roles only (the two sides'
own renderings are linted by the ordinary checks, each alone); finding token indices point
into the chosen side unless the message says rejected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from app.chat.tokens import Finding, Severity
from app.lint.registry import CHECKS, check


@dataclass(frozen=True)
class Side:
    """One answer with its prompt: ids, trained flags, roles (None where unknown), where the
    answer starts, the end-of-turn positions, the texts of its system tokens, and how many
    tokens the max_length cut removed."""

    name: str
    ids: Sequence[int]
    trained: Sequence[bool]
    roles: Sequence[str | None]
    answer_start: int
    eots: Sequence[int] = ()
    system_text: str = ""
    truncated: int = 0


@dataclass
class PairContext:
    """What the preference checks see."""

    chosen: Side
    rejected: Side
    prompt_ids: Sequence[int] | None
    bos_id: int | None
    eos_id: int | None
    max_length: int | None
    decode: object = None  # Callable[[list[int]], str]; typed loosely to stay picklable
    deep: bool = False
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.chosen, self.rejected

    def text(self, ids: Sequence[int]) -> str:
        decode = self.decode
        return decode(list(ids)) if callable(decode) else str(list(ids))

    def finding(
        self, code: str, message: str, tokens: Sequence[int] = (), severity: Severity | None = None
    ) -> Finding:
        return Finding(code, severity or CHECKS[code].severity, message, sorted(set(tokens)))


@check(
    "preference-prompt-not-prefix",
    "warning",
    "The prompt rendered alone is not a prefix of prompt + answer.",
    scope="preference",
)
def prompt_not_prefix(ctx: PairContext) -> Iterator[Finding]:
    prompt = ctx.prompt_ids
    if not prompt:
        return
    for side in ctx.sides:
        shared = 0
        for a, b in zip(prompt, side.ids, strict=False):
            if a != b:
                break
            shared += 1
        if shared < len(prompt):
            lost = ctx.text(prompt[shared:])
            yield ctx.finding(
                "preference-prompt-not-prefix",
                f"{side.name}: the prompt rendered alone (with the generation prompt) is not a "
                f"prefix of prompt + {side.name}: they part at token {shared}, and the prompt's "
                f"end {lost!r} is not in the training sequence. TRL starts the answer where they "
                "part, so the model is trained after a context it never sees at inference. Use "
                "a template that renders the prompt the same way in both, or end the prompt on "
                "a token boundary.",
                range(shared, min(len(prompt), len(side.ids))) if side.name == "chosen" else (),
            )


@check(
    "preference-double-eos",
    "warning",
    "An answer holds more than one EOS token.",
    scope="preference",
)
def double_eos(ctx: PairContext) -> Iterator[Finding]:
    eos = ctx.eos_id
    if eos is None:
        return
    for side in ctx.sides:
        ids = side.ids
        where = [i for i in range(side.answer_start, len(ids)) if ids[i] == eos]
        # Two EOS with nothing but whitespace between them: the data's own EOS, then the one
        # the template or TRL adds (an EOS that is also the end-of-turn marker of several
        # turns has words between).
        doubled = [
            (a, b)
            for a, b in zip(where, where[1:], strict=False)
            if not ctx.text(ids[a + 1 : b]).strip()
        ]
        if doubled:
            a, b = doubled[0]
            yield ctx.finding(
                "preference-double-eos",
                f"{side.name}: the answer ends with EOS twice (tokens {a} and {b}): the data "
                "already ends with EOS (followed by whitespace, or before the template's own) "
                "and another is added, so the model learns to go on after EOS. Strip the EOS "
                "from the data.",
                (a, b) if side.name == "chosen" else (),
            )


@check(
    "preference-bos-in-answer",
    "warning",
    "A BOS token inside an answer.",
    scope="preference",
)
def bos_in_answer(ctx: PairContext) -> Iterator[Finding]:
    bos = ctx.bos_id
    if bos is None:
        return
    for side in ctx.sides:
        if any(t == bos and r == "assistant" for t, r in zip(side.ids, side.roles, strict=False)):
            continue  # BOS opens assistant turns: the template's turn marker (SmolLM2's)
        where = [i for i in range(side.answer_start, len(side.ids)) if side.ids[i] == bos]
        if where:
            yield ctx.finding(
                "preference-bos-in-answer",
                f"{side.name}: a BOS token sits inside the answer (token {where[0]}): the "
                "answer holds a new sequence start (a multi-turn answer under a template that "
                "writes BOS per turn, or BOS in the data), and the model is trained to emit "
                "it. Keep answers to one assistant turn, or remove BOS from the data.",
                where if side.name == "chosen" else (),
            )


@check(
    "preference-system-differs",
    "warning",
    "The chosen and rejected renders carry different system prompts.",
    scope="preference",
)
def system_differs(ctx: PairContext) -> Iterator[Finding]:
    chosen, rejected = ctx.chosen.system_text, ctx.rejected.system_text
    if chosen != rejected:
        yield ctx.finding(
            "preference-system-differs",
            f"The system prompt differs between the two answers ({_short(chosen)} vs "
            f"{_short(rejected)}): the pair is compared under two contexts, so the preference "
            "also rewards the system prompt. Give both the same system message (or an "
            "explicit prompt column).",
        )


@check(
    "preference-truncation-differs",
    "warning",
    "max_length cuts chosen and rejected differently.",
    scope="preference",
)
def truncation_differs(ctx: PairContext) -> Iterator[Finding]:
    if ctx.max_length is None:
        return
    kept = [_keeps_end(s) for s in ctx.sides]
    if kept[0] == kept[1]:  # both whole (glue cut at most), or both cut inside the answer
        return
    parts = [
        f"{s.name} loses {s.truncated} token(s)" + ("" if k else ", its end-of-turn included")
        for s, k in zip(ctx.sides, kept, strict=True)
    ]
    yield ctx.finding(
        "preference-truncation-differs",
        f"At max_length {ctx.max_length}, {' and '.join(parts)}: the preference then compares "
        "a cut answer with a whole one, and the loss favours whichever is shorter. Raise "
        "max_length, or drop or shorten such pairs.",
    )


def _keeps_end(side: Side) -> bool:
    """Whether the answer still ends with its end-of-turn after the cut."""
    return side.truncated == 0 or any(i >= side.answer_start for i in side.eots)


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...") if text else "none"
