"""What a dialect hands the engine: a Layout (text, tokens, who owns every character), and the
`Dialect` protocol that produces one.

A built-in dialect builds labelled `Segment`s and encodes them as its reference formatter does; a
Jinja dialect renders a template with role attribution and tokenizes the whole string. Either way
the engine (app.chat.render) receives a Layout and does the rest: masking, token attribution,
truncation, limits.

Example: the chatml built-in on [user "Hi"] -> text "<|im_start|>user\\nHi<|im_end|>\\n", pieces
         [Piece(0, 12, 0, "header"), Piece(12, 17, 0, "header"), Piece(17, 19, 0, "content"),
          Piece(19, 29, 0, "eot"), Piece(29, 30, 0, "glue")]

Design concession: the protocol lives here, beside the data it returns, so that the engine never
imports the dialects package; the registry there resolves names to objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from app.chat.encoding import Encoded
from app.chat.messages import Message
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Finding, MessageSpan
from app.errors import MaskscopeError
from app.settings import Settings

Part = Literal["bos", "header", "content", "gap", "eot", "glue", "prompt"]
# What a token is within its turn, as views shade it (DESIGN §3.1); every other token is markup.
TokenPart = Literal["content", "reasoning", "tool_call", "image", "audio", "markup"]
# (start, end, label) character ranges, sorted and disjoint.
Labelled = list[tuple[int, int, str]]


class Piece(NamedTuple):
    """A character range of the rendered text, the message owning it and what part it is.

    Example: Piece(start=17, end=19, message=0, part="content")
    """

    start: int
    end: int
    message: int | None
    part: str


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of rendered text. `marker`: a control token, one id when the tokenizer has it."""

    text: str
    message: int | None
    part: Part
    marker: bool = False


@dataclass(frozen=True, slots=True)
class Specials:
    """The BOS/EOS strings a dialect should use with this tokenizer."""

    bos: str | None
    eos: str | None


@dataclass
class Layout:
    """A rendered text before masking: tokens, message spans and the owner of every character."""

    text: str
    encoded: Encoded
    spans: list[MessageSpan]
    pieces: list[Piece]
    generation: list[tuple[int, int]] | None = None
    findings: list[Finding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    # Token parts other than markup (None: the content pieces are the content).
    parts: Labelled | None = None
    # Roles of text that belongs to no message (a template-injected system prompt).
    roles: Labelled = field(default_factory=list)
    # Text inside a trained stretch that the model does not write (a tool result a template
    # puts inside the assistant's turn): never trained.
    holes: list[tuple[int, int]] = field(default_factory=list)
    # Image and audio placeholder ranges (the encoders' positions): never trained either.
    images: list[tuple[int, int]] = field(default_factory=list)


Layouts = Callable[[], list[Layout | MaskscopeError]]


class Dialect(Protocol):
    """A chat format the engine can render: a built-in or a Jinja template."""

    @property
    def name(self) -> str: ...

    def layout(
        self,
        conversation: Sequence[Message],
        tokenizer: Tokenizer,
        spec: RenderSpec,
        settings: Settings,
    ) -> Layout:
        """Render and encode one conversation."""
        ...

    def start_layouts(
        self,
        conversations: Sequence[Sequence[Message]],
        tokenizer: Tokenizer,
        spec: RenderSpec,
        settings: Settings,
        pool: Executor | None,
    ) -> Layouts:
        """Layouts of many conversations in two steps: rendering (and, where the whole text is
        tokenized, the start of its tokenization on `pool`) now; the returned function finishes
        them. A conversation that fails gets its MaskscopeError in its place."""
        ...
