"""Role tracking for any Jinja chat template, in one render.

The template is rendered once, chunk by chunk (`Template.generate`). The messages are handed to it
as a list whose iterator, and a loop context installed in the compiled template, record which
message the template is currently looping over; every chunk is attributed to that message (None
before and after the message loop: a BOS, a generation prompt). This is O(output) and exact for
templates that emit a turn while looping over that turn's message; app.templating.locating then
finds each message's content inside its regions.

Design concession: a chunk belongs to the message being looped over when it is emitted, not to the
message whose text it holds. Templates that fold a message into another turn (the system prompt
inside the first user turn, Llama 2 and Gemma style) or write one before the loop (Qwen's
`messages[0].content`) leave it owning no chunk, or an unowned one; locating repairs that.

Example: render_attributed("{% for m in messages %}[{{ m.content }}]{% endfor %}!",
         [{"role": "user", "content": "Hi"}], {}, max_range=100, max_chars=1000)
         -> Attributed(text="[Hi]!", regions=[(0, 4, 0), (4, 5, None)], generation=[])
"""

from __future__ import annotations

import dataclasses
import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.runtime import LoopContext

from app.chat.encoding import cut_points
from app.errors import LimitError, MaskscopeError, TemplateError
from app.templating.limits import generate_limited
from app.templating.sandbox import GenerationRecorder, compile_template, recording
from app.tokenizers.counting import encode_pieces

Region = tuple[int, int, int | None]


class _Tracker:
    """Which message the template is emitting right now.

    Loops over the messages form a stack: a loop nested in a turn that looks at other messages
    (gpt-oss scans the messages after a tool call) hands the turn back to the loop around it
    when it ends, and a loop over the same list as one left by `{% break %}` (Cohere's scan for
    a system prompt) takes its place.
    """

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.index_of = {id(m): i for i, m in enumerate(messages)}
        self.current: int | None = None
        self.loops: list[list[Any]] = []  # [loop, the list it iterates, its message index]

    def visit(self, item: Any, loop: object, items: object) -> None:
        loops = self.loops
        if loops and loops[-1][0] is loop:  # the usual case: the same loop moves on
            index = self.index_of.get(id(item))
            if index is not None:
                loops[-1][2] = index
            self.current = loops[-1][2]
            return
        at = self._find(loop, items)
        if at is None:
            self.loops.append([loop, items, None])
        else:
            del self.loops[at + 1 :]
            self.loops[at][0] = loop
        index = self.index_of.get(id(item))
        if index is not None:
            self.loops[-1][2] = index
        self.current = self.loops[-1][2]

    def finish(self, loop: object, items: object) -> None:
        at = self._find(loop, items)
        if at is not None:
            del self.loops[at:]
        self.current = self.loops[-1][2] if self.loops else None

    def _find(self, loop: object, items: object) -> int | None:
        for at in range(len(self.loops) - 1, -1, -1):
            if self.loops[at][0] is loop or self.loops[at][1] is items:
                return at
        return None


_TRACKER: ContextVar[_Tracker | None] = ContextVar("message_tracker", default=None)


class _TrackingIterator:
    """Iterator over messages for plain `{% for %}` loops (no `loop` variable used)."""

    __slots__ = ("_it", "_items")

    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self._it = list.__iter__(items)

    def __iter__(self) -> _TrackingIterator:
        return self

    def __next__(self) -> Any:
        tracker = _TRACKER.get()
        try:
            item = next(self._it)
        except StopIteration:
            if tracker is not None:
                tracker.finish(self, self._items)
            raise
        if tracker is not None:
            tracker.visit(item, self, self._items)
        return item


class TrackedMessages(list[Any]):
    """The `messages` list a template sees; iterating it (or a slice of it) tracks the message."""

    def __iter__(self) -> _TrackingIterator:
        return _TrackingIterator(self)

    def __getitem__(self, key: Any) -> Any:
        value = list.__getitem__(self, key)
        return TrackedMessages(value) if isinstance(key, slice) else value


class _TrackingLoopContext(LoopContext):
    """Loop context for `{% for %}` loops that use `loop`: tracks real advances, not peeks.

    `loop.last` peeks at the next item before the body ends, so the iterator alone would switch
    messages too early; here the switch happens when the loop hands out the item.
    """

    @staticmethod
    def _to_iterator(iterable: Any) -> Any:
        if isinstance(iterable, TrackedMessages):
            return list.__iter__(iterable)
        return iter(iterable)

    def __next__(self) -> tuple[Any, LoopContext]:
        tracker = _TRACKER.get()
        try:
            item, loop = super().__next__()
        except StopIteration:
            if tracker is not None and isinstance(self._iterable, TrackedMessages):
                tracker.finish(self, self._iterable)
            raise
        if tracker is not None and isinstance(self._iterable, TrackedMessages):
            tracker.visit(item, self, self._iterable)
        return item, loop


class _TrackingIndices:
    """`range(messages | length)`: an index loop over the messages (EXAONE 4 loops so), tracked
    like a loop over the messages themselves."""

    def __init__(self, indices: Any, messages: TrackedMessages) -> None:
        self._indices, self._messages = indices, messages

    def __iter__(self) -> Any:
        tracker = _TRACKER.get()
        for i in self._indices:
            if tracker is not None:
                tracker.visit(list.__getitem__(self._messages, i), self, self._messages)
            yield i
        if tracker is not None:
            tracker.finish(self, self._messages)

    def __len__(self) -> int:
        return len(self._indices)


def _tracking_range(bounded: Any, messages: TrackedMessages) -> Any:
    def tracking_range(*args: Any) -> Any:
        indices = bounded(*args)
        if args in ((len(messages),), (0, len(messages))):
            return _TrackingIndices(indices, messages)
        return indices

    return tracking_range


def _install_tracking(template: jinja2.Template) -> None:
    # The compiled module looks LoopContext up in its own globals: swap it for this template only.
    namespace = template.root_render_func.__globals__
    if namespace.get("LoopContext") is not _TrackingLoopContext:
        namespace["LoopContext"] = _TrackingLoopContext


@dataclass(frozen=True)
class Cue:
    """Where a template's assistant turn starts being generated, learned from a probe.

    `head`: what the assistant's own chunk writes before the generation starts (its header,
    `<|im_start|>assistant\n`); `back`: text written before the assistant's chunk that the model
    still generates (rare: a space that a user turn writes after its prompt ended); `missing`: the
    tail of the generation prompt that the training text lacks (DeepSeek-R1's `<think>\n`), ''
    when the prompt is a prefix of the training text, as it should be.
    """

    head: str
    back: str = ""
    missing: str = ""
    after_tool: Cue | None = None  # the same, for a turn that follows a tool result

    def to_json(self) -> list[Any]:
        tool = self.after_tool
        return [self.head, self.back, self.missing, None if tool is None else tool.to_json()]

    @classmethod
    def from_json(cls, data: list[Any]) -> Cue:
        head, back, missing, tool = data
        return cls(head, back, missing, None if tool is None else cls.from_json(tool))


@dataclass
class Attributed:
    """A rendered template: the text, chunk regions by message, `{% generation %}` spans and the
    template's generation cue (None when no probe conversation renders)."""

    text: str
    regions: list[Region]
    generation: list[tuple[int, int]] = field(default_factory=list)
    cue: Cue | None = None
    # Image placeholders expanded after the render (app.chat.images): their character ranges,
    # how many the template wrote and how many images the messages hold.
    images: list[tuple[int, int]] = field(default_factory=list)
    placeholders: int = 0
    image_count: int = 0
    # The same for audio clips.
    audio: list[tuple[int, int]] = field(default_factory=list)
    audio_placeholders: int = 0
    audio_count: int = 0
    # The worker's tokenization of `text`, where it counted the tokens: (cut offsets, the ids
    # of each piece); see app.chat.encoding.encoded_from_pieces.
    encoding: tuple[list[int], list[list[int]]] | None = None

    def to_json(self) -> dict[str, Any]:
        cue = self.cue
        return {
            "text": self.text,
            "regions": self.regions,  # tuples encode as JSON arrays
            "generation": self.generation,
            "cue": None if cue is None else cue.to_json(),
            "encoding": self.encoding,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attributed:
        cue, encoding = data.get("cue"), data.get("encoding")
        return cls(
            text=data["text"],
            regions=[tuple(r) for r in data["regions"]],
            generation=[tuple(g) for g in data["generation"]],
            cue=None if cue is None else Cue.from_json(cue),
            encoding=None if encoding is None else (encoding[0], encoding[1]),
        )


def render_attributed(
    source: str,
    messages: list[dict[str, Any]],
    context: dict[str, Any],
    *,
    max_range: int,
    max_chars: int,
    limited: bool = True,
) -> Attributed:
    """Render `source` once and attribute every output chunk to a message index (or None).

    `limited=False` is for the templates Maskscope ships (see sandbox.build_environment)."""
    template = compile_template(source, max_range, max_chars, limited)
    _install_tracking(template)
    tracked = TrackedMessages(messages)
    tracker = _Tracker(messages)
    recorder = GenerationRecorder()
    chunks: list[str] = []
    regions: list[list[Any]] = []
    token = _TRACKER.set(tracker)
    try:
        with recording(recorder):
            variables = {
                **context,
                "messages": tracked,
                "range": _tracking_range(template.environment.globals["range"], tracked),
            }
            for chunk in generate_limited(template, max_chars, variables):
                if not chunk:
                    continue
                start = recorder.produced
                recorder.produced = start + len(chunk)
                chunks.append(chunk)
                owner = tracker.current
                # Unowned chunks stay separate: one may turn out to hold a message (see below).
                if regions and owner is not None and regions[-1][2] == owner:
                    regions[-1][1] = recorder.produced
                else:
                    regions.append([start, recorder.produced, owner])
    except MaskscopeError:
        raise
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateError(f"The template failed{where}: {exc}", field="template") from None
    finally:
        _TRACKER.reset(token)
    return Attributed("".join(chunks), [tuple(r) for r in regions], recorder.spans)


def render_untrusted(
    source: str,
    messages: list[dict[str, Any]],
    context: dict[str, Any],
    max_range: int,
    max_chars: int,
    token_cap: tuple[str, int, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """Worker entry point for pasted templates: JSON in, JSON out. `token_cap`: (tokenizer
    file, max_tokens, the texts a long text may be cut before); a text longer than max_tokens
    characters is tokenized here and refused when over max_tokens, so the server never
    tokenizes it (see app.tokenizers.counting); else its ids go back with it, so the server
    does not tokenize it a second time."""
    att = render_attributed(source, messages, context, max_range=max_range, max_chars=max_chars)
    att.cue = generation_cue(source, context, max_range, max_chars)
    if token_cap is not None and len(att.text) > token_cap[1]:
        path, max_tokens, cut_texts = token_cap
        cuts = cut_points(att.text, cut_texts)
        pieces = encode_pieces(path, att.text, cuts)
        check_token_count(sum(map(len, pieces)), max_tokens)
        att.encoding = (cuts, pieces)
    return att.to_json()


def check_token_count(count: int, max_tokens: int) -> None:
    """LimitError naming max_tokens when a rendering of `count` tokens has more than that."""
    if count > max_tokens:
        raise LimitError(
            f"The rendering has {count:,} tokens; the limit is {max_tokens:,} (max_tokens "
            "setting). Set max_length to cut it.",
            field="messages",
            setting="max_tokens",
        )


_PROBE_USER = {"role": "user", "content": "Probe question?"}
_PROBES: tuple[tuple[dict[str, Any], ...], ...] = (
    (_PROBE_USER,),
    ({"role": "system", "content": "Probe system."}, _PROBE_USER),
)
_PROBE_ANSWER = {"role": "assistant", "content": "Probe answer."}
# A tool round before the answer: templates write the turn after a tool result differently.
_PROBE_TOOL_ROUND: tuple[dict[str, Any], ...] = (
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "probe_tool", "arguments": {}}}],
    },
    {"role": "tool", "name": "probe_tool", "tool_call_id": "probe", "content": "Probe result."},
)


def generation_cue(
    source: str,
    context: dict[str, Any],
    max_range: int,
    max_chars: int,
    limited: bool = True,
) -> Cue | None:
    """Where this template's assistant turns start being generated, from one probe: the prompt
    (`add_generation_prompt=True` on a user turn) against the same turn answered; and the same
    after a tool result (`Cue.after_tool`). Cached per template and variables, so a dataset
    pays it once."""
    last = _LAST_CUE
    if (
        last
        and last[0] is source
        and last[1] is context
        and last[2] == (max_range, max_chars, limited)
    ):
        cached: Cue | None = last[3]  # a dataset renders every row with one source, one context
        return cached
    key = json.dumps(context, sort_keys=True, default=str)
    cue = _cached_cue(source, key, max_range, max_chars, limited)
    _LAST_CUE[:] = [source, context, (max_range, max_chars, limited), cue]
    return cue


# (source, context, limits, cue) of the last call: the same objects come back for every row.
_LAST_CUE: list[Any] = []


@lru_cache(maxsize=64)
def _cached_cue(
    source: str, context_key: str, max_range: int, max_chars: int, limited: bool
) -> Cue | None:
    context = json.loads(context_key)

    def probe(before: tuple[dict[str, Any], ...]) -> Cue | None:
        try:
            prompt = render_attributed(
                source,
                [dict(m) for m in before],
                {**context, "add_generation_prompt": True},
                max_range=max_range,
                max_chars=max_chars,
                limited=limited,
            ).text
            answered = render_attributed(
                source,
                [*(dict(m) for m in before), dict(_PROBE_ANSWER)],
                {**context, "add_generation_prompt": False},
                max_range=max_range,
                max_chars=max_chars,
                limited=limited,
            )
        except Exception:  # any failure of the probe only means: no cue
            return None
        owned = [r for r in answered.regions if r[2] == len(before)]
        return cue_from(prompt, answered.text, owned[0][0]) if owned else None

    for messages in _PROBES:
        cue = probe(messages)
        if cue is not None:
            after_tool = probe((*messages, *_PROBE_TOOL_ROUND))
            return dataclasses.replace(cue, after_tool=after_tool)
    return None


def cue_from(prompt: str, answered: str, turn_start: int) -> Cue:
    """The cue of a template whose prompt renders as `prompt` and whose answered conversation
    renders as `answered`, the answer's own chunk starting at `turn_start`.

    Example: cue_from("<s>U:x\nA:", "<s>U:x\nA:y</s>", 7) -> Cue(head="A:")
    """
    common = 0
    limit = min(len(prompt), len(answered))
    while common < limit and prompt[common] == answered[common]:
        common += 1
    missing = prompt[common:]
    if common >= turn_start:
        return Cue(answered[turn_start:common], "", missing)
    return Cue("", answered[common:turn_start], missing)
