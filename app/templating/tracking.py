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

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.runtime import LoopContext

from app.errors import LimitError, MaskscopeError, TemplateError
from app.templating.limits import generate_limited
from app.templating.sandbox import GenerationRecorder, compile_template, recording
from app.tokenizers.counting import count_tokens

Region = tuple[int, int, int | None]


class _Tracker:
    """Which message the template is emitting right now."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.index_of = {id(m): i for i, m in enumerate(messages)}
        self.current: int | None = None

    def visit(self, item: Any) -> None:
        index = self.index_of.get(id(item))
        if index is not None:
            self.current = index


_TRACKER: ContextVar[_Tracker | None] = ContextVar("message_tracker", default=None)


class _TrackingIterator:
    """Iterator over messages for plain `{% for %}` loops (no `loop` variable used)."""

    __slots__ = ("_it",)

    def __init__(self, items: list[Any]) -> None:
        self._it = list.__iter__(items)

    def __iter__(self) -> _TrackingIterator:
        return self

    def __next__(self) -> Any:
        tracker = _TRACKER.get()
        try:
            item = next(self._it)
        except StopIteration:
            if tracker is not None:
                tracker.current = None
            raise
        if tracker is not None:
            tracker.visit(item)
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
            if (
                tracker is not None
                and tracker.current is not None
                and isinstance(self._iterable, TrackedMessages)
            ):
                tracker.current = None
            raise
        if tracker is not None:
            tracker.visit(item)
        return item, loop


def _install_tracking(template: jinja2.Template) -> None:
    # The compiled module looks LoopContext up in its own globals: swap it for this template only.
    namespace = template.root_render_func.__globals__
    if namespace.get("LoopContext") is not _TrackingLoopContext:
        namespace["LoopContext"] = _TrackingLoopContext


@dataclass
class Attributed:
    """A rendered template: the text, chunk regions by message, and `{% generation %}` spans."""

    text: str
    regions: list[Region]
    generation: list[tuple[int, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "regions": [list(r) for r in self.regions],
            "generation": [list(g) for g in self.generation],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attributed:
        return cls(
            text=data["text"],
            regions=[tuple(r) for r in data["regions"]],
            generation=[tuple(g) for g in data["generation"]],
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
            for chunk in generate_limited(template, max_chars, {**context, "messages": tracked}):
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
    token_cap: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """Worker entry point for pasted templates: JSON in, JSON out. `token_cap`: (tokenizer
    file, max_tokens); a text longer than max_tokens characters is counted here and refused when
    over it, so the server never tokenizes it (see app.tokenizers.counting)."""
    att = render_attributed(source, messages, context, max_range=max_range, max_chars=max_chars)
    if token_cap is not None and len(att.text) > token_cap[1]:
        check_token_count(att.text, *token_cap)
    return att.to_json()


def check_token_count(text: str, tokenizer_file: str, max_tokens: int) -> None:
    """LimitError naming max_tokens when `text` has more tokens than that."""
    count = count_tokens(tokenizer_file, text)
    if count > max_tokens:
        raise LimitError(
            f"The rendering has {count:,} tokens; the limit is {max_tokens:,} (max_tokens "
            "setting). Set max_length to cut it.",
            field="messages",
            setting="max_tokens",
        )
