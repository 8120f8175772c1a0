"""Which characters, then which tokens, are trained: the loss mask.

A policy picks character ranges from the message spans: what the model generates in each chosen
assistant turn (`gen_start:gen_end`, up to and including the end-of-turn marker, which
`train_on_eot=false` leaves out), or, where a dialect gives no generated stretch, the content plus
the end-of-turn marker and any whitespace before it; a token is trained when its character offsets
overlap a range, which is the rule transformers uses for `return_assistant_tokens_mask`.

Example: ChatML "<|im_start|>assistant\\nHi<|im_end|>\\n", train_on="assistant":
         "Hi" and "<|im_end|>" are trained; the header and the final "\\n" are not.

Design concession: a token that straddles a boundary (a merge across header and content) is
trained, as in transformers, rather than split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.chat.spec import TRAIN_ON, TrainOn
from app.chat.tokens import MessageSpan
from app.errors import InputError

Range = tuple[int, int, int | None]


@dataclass(frozen=True, slots=True)
class MaskPolicy:
    """`train_on`: assistant | last_assistant | all; `train_on_eot`: train the closing marker.
    `overrides`: (message, trained) pairs from a message's own `train` / `weight`, which win
    over `train_on` for that message.

    Example: MaskPolicy("last_assistant", overrides=((1, True),)) trains messages[1] (an
             assistant turn) as well as the last assistant turn
    """

    train_on: TrainOn = "assistant"
    train_on_eot: bool = True
    overrides: tuple[tuple[int, bool], ...] = ()

    def __post_init__(self) -> None:
        if self.train_on not in TRAIN_ON:
            raise InputError(
                f"train_on is {self.train_on!r}; it must be one of {', '.join(TRAIN_ON)}.",
                field="train_on",
            )


def trained_ranges(
    spans: Sequence[MessageSpan],
    policy: MaskPolicy,
    text_len: int,
    generation: Sequence[tuple[int, int]] | None = None,
    holes: Sequence[tuple[int, int]] = (),
) -> list[Range]:
    """Sorted, disjoint (start, end, message) character ranges to train on.

    With `generation` (the template's `{% generation %}` spans) those spans are the assistant
    output, exactly as transformers' `return_assistant_tokens_mask` sees it. `holes`: text the
    model does not write inside an assistant turn (a tool result), cut out of every range.
    """
    if policy.train_on == "all":
        ranges: list[Range] = [(0, text_len, None)]
        off = {k for k, trained in policy.overrides if not trained}
        holes = [*holes, *((s.start, s.end) for s in spans if s.message in off)]
    else:
        ranges = _chosen_ranges(spans, policy, generation)
    for a, b in holes:
        ranges = [(s, e, m) for r in ranges for s, e, m in _cut(r, a, b)]
    return ranges


def _chosen(spans: Sequence[MessageSpan], policy: MaskPolicy) -> list[MessageSpan]:
    """The spans `train_on` picks, with the messages' own `train` / `weight` applied."""
    chosen = [s for s in spans if s.role == "assistant"]
    if policy.train_on == "last_assistant":
        chosen = chosen[-1:]
    if not policy.overrides:
        return chosen
    say = dict(policy.overrides)
    picked = {s.message for s in chosen}
    return [s for s in spans if say.get(s.message, s.message in picked)]


def _cut(r: Range, a: int, b: int) -> list[Range]:
    s, e, m = r
    if e <= a or s >= b:
        return [r]
    return [x for x in ((s, a, m), (b, e, m)) if x[1] > x[0]]


def _chosen_ranges(
    spans: Sequence[MessageSpan],
    policy: MaskPolicy,
    generation: Sequence[tuple[int, int]] | None,
) -> list[Range]:
    chosen = _chosen(spans, policy)
    if generation is not None:
        return _from_generation(spans, chosen, policy, generation)
    out: list[Range] = []
    for s in chosen:
        if s.gen_start is not None and s.gen_end is not None:
            start, end = s.gen_start, s.gen_end
            if not policy.train_on_eot and s.eot_start is not None and s.eot_end == end:
                end = s.eot_start
        else:
            start = s.content_start
            end = s.eot_end if policy.train_on_eot and s.eot_end is not None else s.content_end
        if end > start:
            out.append((start, end, s.message))
    return sorted(out)


def _from_generation(
    spans: Sequence[MessageSpan],
    chosen: Sequence[MessageSpan],
    policy: MaskPolicy,
    generation: Sequence[tuple[int, int]],
) -> list[Range]:
    assistants = [s for s in spans if s.role == "assistant"]
    keep = {s.message for s in chosen}
    out: list[Range] = []
    for g0, g1 in generation:
        owner = next((s for s in assistants if s.start <= g0 < max(s.end, s.start + 1)), None)
        if owner.message not in keep if owner else policy.train_on == "last_assistant":
            continue
        pieces = [(g0, g1)]
        if not policy.train_on_eot and owner is not None and owner.eot_start is not None:
            pieces = subtract(pieces, owner.eot_start, owner.eot_end or owner.eot_start)
        out += [(a, b, owner.message if owner else None) for a, b in pieces if b > a]
    return sorted(out)


def subtract(pieces: list[tuple[int, int]], a: int, b: int) -> list[tuple[int, int]]:
    """`pieces` (character ranges) with [a, b) cut out of them.

    Example: subtract([(0, 10)], 3, 5) -> [(0, 3), (5, 10)]
    """
    out = []
    for s, e in pieces:
        if e <= a or s >= b:
            out.append((s, e))
            continue
        if s < a:
            out.append((s, a))
        if e > b:
            out.append((b, e))
    return out
