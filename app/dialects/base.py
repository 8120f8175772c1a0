"""What a built-in dialect is: a function from messages to labelled text segments.

Design concession: dialects are small Python functions rather than Jinja, because each segment
must carry its message, its part (header, content, end-of-turn...) and whether it is a control
marker; the reference formatters they copy (Meta's, the official templates) are procedural too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from app.chat.encoding import tokenizer_info, with_added_specials
from app.chat.layout import Layout, Layouts, Segment, Specials
from app.chat.messages import PART_KINDS, ROLES, Message
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.dialects.segments import layout_segments
from app.errors import InputError, MaskscopeError
from app.settings import Settings

Builder = Callable[[Sequence[Message], Specials, bool], list[Segment]]


@dataclass(frozen=True)
class BuiltinDialect:
    """A built-in chat format (an `app.chat.layout.Dialect`).

    `split_text`: encode every text segment on its own (Meta's Llama 3 reference) instead of the
    text between two control tokens as one piece.
    """

    name: str
    title: str
    description: str
    markers: tuple[str, ...]
    builder: Builder
    split_text: bool = False
    default_eos: str | None = None
    roles: tuple[str, ...] = field(default=ROLES)

    def __post_init__(self) -> None:
        # A developer message is written as system wherever the format has a system role.
        if "system" in self.roles and "developer" not in self.roles:
            at = self.roles.index("system") + 1
            object.__setattr__(self, "roles", (*self.roles[:at], "developer", *self.roles[at:]))

    def build(self, messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
        """The labelled segments of `messages`; a role outside `roles` is refused here, once,
        so builders only check the order their format needs. A developer message is the
        system message under its newer name: every built-in writes it as system (and refuses
        it where it has no system role)."""
        check_roles(messages, self.name, self.roles)
        check_media(messages, self.name)
        if any(m.role == "developer" for m in messages):
            messages = [as_system(m) if m.role == "developer" else m for m in messages]
        return self.builder(messages, specials, gen)

    def layout(
        self,
        conversation: Sequence[Message],
        tokenizer: Tokenizer,
        spec: RenderSpec,
        settings: Settings,
    ) -> Layout:
        """Lay out `conversation` and encode it segment by segment, like the reference."""
        info = tokenizer_info(tokenizer)
        specials = Specials(bos=info.bos, eos=info.eos or self.default_eos)
        segments = self.build(conversation, specials, spec.add_generation_prompt)
        layout = layout_segments(segments, conversation, tokenizer, info, self.split_text)
        if spec.add_special_tokens:
            layout.encoded = with_added_specials(tokenizer, layout.encoded, len(layout.text))
        return layout

    def start_layouts(
        self,
        conversations: Sequence[Sequence[Message]],
        tokenizer: Tokenizer,
        spec: RenderSpec,
        settings: Settings,
        pool: Executor | None,
    ) -> Layouts:
        """Built-ins encode segment by segment, so nothing is gained by starting early: every
        layout is made when the returned function is called."""

        def layouts() -> list[Layout | MaskscopeError]:
            out: list[Layout | MaskscopeError] = []
            for conversation in conversations:
                try:
                    out.append(self.layout(conversation, tokenizer, spec, settings))
                except MaskscopeError as exc:
                    out.append(exc)
            return out

        return layouts

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "special_tokens": list(self.markers),
            "roles": list(self.roles),
        }


def check_roles(messages: Sequence[Message], dialect: str, allowed: Sequence[str]) -> None:
    """Every message's role is one of `allowed`, else InputError naming messages[i].role."""
    for i, m in enumerate(messages):
        if m.role not in allowed:
            raise InputError(
                f"messages[{i}].role is {m.role!r}, which the {dialect} format does "
                f"not support (it knows {', '.join(allowed)}).",
                field=f"messages[{i}].role",
            )


def check_media(messages: Sequence[Message], dialect: str) -> None:
    """No image or audio parts: a built-in has no placeholder tokens for them (text parts are
    joined into the content). The refusal names the part: messages[i].content[j]."""
    for i, m in enumerate(messages):
        for j, part in enumerate(m.parts or ()):
            kind = PART_KINDS[part["type"]]
            if kind == "text":
                continue
            raise InputError(
                f"messages[{i}].content[{j}] is an {kind} part, which the {dialect} format "
                "cannot write (it has no placeholder for it); send text parts only, or "
                "render with dialect 'tokenizer' or 'custom' for a multimodal template.",
                field=f"messages[{i}].content[{j}]",
            )


def as_system(message: Message) -> Message:
    return Message("system", message.content, message.extra, message.parts)


def check_alternation(messages: Sequence[Message], dialect: str, start: int) -> None:
    """User/assistant must alternate from `start`, beginning with user (Llama 2, Mistral, Gemma)."""
    for i in range(start, len(messages)):
        want = "user" if (i - start) % 2 == 0 else "assistant"
        if messages[i].role != want:
            raise InputError(
                f"messages[{i}].role is {messages[i].role!r} but the {dialect} format "
                f"needs {want} there: after an optional first system message, roles "
                "must alternate user/assistant.",
                field=f"messages[{i}].role",
            )


def check_system_first(messages: Sequence[Message], dialect: str) -> None:
    """A system message may only open the conversation (Alpaca)."""
    for i in range(1, len(messages)):
        if messages[i].role == "system":
            raise InputError(
                f"messages[{i}].role is 'system' but the {dialect} format allows a "
                "system message only first.",
                field=f"messages[{i}].role",
            )


def strip_segments(
    segments: list[Segment], *, left: bool = True, right: bool = True
) -> list[Segment]:
    """str.strip() over the concatenation of `segments`, keeping each segment's labels.

    Example: [Segment(" a", 0, "content"), Segment("b ", 0, "content")] -> [" a"->"a", "b "->"b"]
    """
    out = list(segments)
    if left:
        for i, seg in enumerate(out):
            text = seg.text.lstrip()
            out[i] = Segment(text, seg.message, seg.part, seg.marker)
            if text:
                break
    if right:
        for i in range(len(out) - 1, -1, -1):
            seg = out[i]
            text = seg.text.rstrip()
            out[i] = Segment(text, seg.message, seg.part, seg.marker)
            if text:
                break
    return out
