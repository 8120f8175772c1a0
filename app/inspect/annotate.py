"""Add `{% generation %}` tags to a chat template, for TRL's `assistant_only_loss`.

The rewrite works on the template source, tag by tag: inside a loop over the messages, the output
expression that writes a message's content is split at its first term mentioning the content;
the part from there on (and the end-of-turn literal that follows, in the same or the next output)
is wrapped as `{% if <msg>.role == 'assistant' %}{% generation %}…{% endgeneration %}{% else %}…
{% endif %}`. `+` signs on the new block tags switch off trim_blocks/lstrip_blocks so the output
stays byte-identical, which `verify_annotation` then checks on probe conversations.

Design concession: templates that assemble a turn in `{% set %}` before printing it (the bundled
Llama 3 template does) are not rewritten; `annotate_generation` says so instead of guessing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

CONTENT = re.compile(r"\b(reasoning_)?content\b")
STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
SUBSCRIPT = re.compile(r"\[\s*(['\"])((?:reasoning_)?content)\1\s*\]")
THINK = "<think>"
ROLE_WORD = re.compile(r"\b(assistant|model|user|system)\b")
FOR_TAG = re.compile(r"^\s*for\s+(\w+)(?:\s*,\s*\w+)?\s+in\s+(.+)$", re.DOTALL)


@dataclass(frozen=True)
class Tag:
    """A piece of template source: kind 'data', 'var', 'block' or 'comment'."""

    kind: str
    text: str


def scan(source: str) -> list[Tag]:
    """Split template source into data and tags; joining the texts gives the source back.

    Example: "a{{ x }}b" -> [Tag('data','a'), Tag('var','{{ x }}'), Tag('data','b')]
    """
    out, pos = [], 0
    closers = {"{{": "}}", "{%": "%}", "{#": "#}"}
    kinds = {"{{": "var", "{%": "block", "{#": "comment"}
    for match in re.finditer(r"\{\{|\{%|\{#", source):
        if match.start() < pos:
            continue
        opener = match.group()
        end = _tag_end(source, match.end(), closers[opener], opener == "{#")
        if match.start() > pos:
            out.append(Tag("data", source[pos : match.start()]))
        out.append(Tag(kinds[opener], source[match.start() : end]))
        pos = end
    if pos < len(source):
        out.append(Tag("data", source[pos:]))
    return out


def _tag_end(source: str, i: int, closer: str, comment: bool) -> int:
    quote = None
    while i < len(source):
        ch = source[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"" and not comment:
            quote = ch
        elif source.startswith(closer, i):
            return i + len(closer)
        i += 1
    return len(source)


def split_terms(expr: str) -> list[str]:
    """Top-level operands of `+` / `~`, operators kept at the start of each later term.

    Example: "'<a>' + m.role + '\\n' + m.content | trim" -> ["'<a>' ", "+ m.role ", "+ '\\n' ",
             "+ m.content | trim"]
    """
    terms, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch in "+~" and depth == 0 and i > start:
            terms.append(expr[start:i])
            start = i
        i += 1
    terms.append(expr[start:])
    return terms


def _operand(term: str) -> str:
    """A term without its leading operator. Example: "+ m.content " -> "m.content" """
    return term.strip().lstrip("+~").strip()


def _mentions_content(term: str) -> bool:
    """Whether a term reads a content field (not merely a string that says "content").

    Example: "m['content'] | trim" -> True; 'raise_exception("Invalid content")' -> False
    """
    code = STRING.sub("''", SUBSCRIPT.sub(r".\2", _operand(term)))
    return bool(CONTENT.search(code))


def _literal(term: str) -> str | None:
    # Jinja string literals may hold raw newlines; Python's need the escape.
    try:
        value = ast.literal_eval(_operand(term).replace("\r", "\\r").replace("\n", "\\n"))
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


@dataclass
class Annotation:
    """The rewritten template and how many outputs were wrapped (0: it could not be annotated)."""

    template: str
    wrapped: int
    notes: list[str] = field(default_factory=list)


def annotate_generation(source: str, *, eot_text: str | None) -> Annotation:
    """Wrap assistant content and its end-of-turn marker in `{% generation %}` blocks."""
    loops: list[str | None] = []
    out, wrapped, pending_eot = [], 0, False
    for tag in scan(source):
        if tag.kind == "block":
            _track_loops(tag.text, loops)
            out.append(tag.text)
            continue
        var = next((v for v in reversed(loops) if v), None)
        if tag.kind != "var" or var is None:
            out.append(tag.text)
            continue
        rewritten, kind = _rewrite_output(tag.text, var, eot_text, pending_eot)
        if kind in ("content", "content+eot"):
            wrapped += 1
        if kind != "none":
            pending_eot = kind == "content" and eot_text is not None
        out.append(rewritten)
    notes = (
        []
        if wrapped
        else [
            (
                "No output expression inside the messages loop writes the message content (a "
                "template that builds each turn with {% set %} first cannot be annotated "
                "automatically)."
            )
        ]
    )
    return Annotation("".join(out), wrapped, notes)


def _track_loops(text: str, loops: list[str | None]) -> None:
    inner = text[2:-2].strip("-+ \t\n")
    match = FOR_TAG.match(inner)
    if match:
        loops.append(match.group(1) if "messages" in match.group(2) else None)
    elif inner.split()[:1] == ["endfor"] and loops:
        loops.pop()


def _rewrite_output(text: str, var: str, eot: str | None, want_eot: bool) -> tuple[str, str]:
    """Rewrite one `{{ … }}` tag; say whether it held content, an end-of-turn, or neither."""
    inner = text[2:-2]
    left = inner[:1] if inner[:1] in "-+" else ""
    right = inner[-1:] if inner[-1:] in "-+" else ""
    terms = split_terms(inner[len(left) : len(inner) - len(right)])
    at = next((k for k, t in enumerate(terms) if _mentions_content(t)), None)
    kind = "content"
    if at is None:
        if not (want_eot and eot and (_literal(terms[0]) or "").startswith(eot)):
            return text, "none"
        at, kind = 0, "eot"
    head, body = _start_at_reasoning(terms[:at], terms[at:])
    body, tail, closed = _cut_after_eot(body, eot)
    if closed and kind == "content":
        kind = "content+eot"
    cond = f"{var}.role == 'assistant'"
    gen = _expr(body)
    pieces = []
    if head:
        pieces.append("{{ " + _expr(head) + " }}")
    pieces.append(
        f"{{% if {cond} %}}{{% generation %}}{{{{ {gen} }}}}{{% endgeneration %}}"
        f"{{% else %}}{{{{ {gen} }}}}{{% endif %}}"
    )
    if tail:
        pieces.append("{{ " + _expr(tail) + " }}")
    joined = "".join(pieces)
    # Keep the original whitespace control on the outermost tags; '+' stops trim/lstrip_blocks.
    joined = (
        ("{{" + left + joined[2:])
        if joined.startswith("{{")
        else ("{%" + (left or "+") + joined[2:])
    )
    joined = (
        (joined[:-2] + right + "}}")
        if joined.endswith("}}")
        else (joined[:-2] + (right or "+") + "%}")
    )
    return joined, kind


def _start_at_reasoning(head: list[str], body: list[str]) -> tuple[list[str], list[str]]:
    """Move an opening `<think>` written just before the content into the trained part: the
    model writes it itself after the generation prompt.

    Example: ["'<a>\\n<think>\\n' "], ["+ r"] -> ["'<a>\\n'"], ["'<think>\\n'", "+ r"]
    """
    value = _literal(head[-1]) if head else None
    if value is None or THINK not in value:
        return head, body
    cut = value.index(THINK)
    op = head[-1].strip()[0] if head[-1].strip()[0] in "+~" else ""
    before = [f"{op} {value[:cut]!r}".strip()] if value[:cut] else []
    body = [repr(value[cut:]), *(f"+ {_operand(body[0])}", *body[1:])]
    return head[:-1] + before, body


def _cut_after_eot(body: list[str], eot: str | None) -> tuple[list[str], list[str], bool]:
    """Split `body` right after the end-of-turn literal; what follows (glue) stays untrained."""
    if not eot:
        return body, [], False
    for k, term in enumerate(body):
        value = _literal(term)
        if value is None or eot not in value:
            continue
        cut = value.index(eot) + len(eot)
        keep, rest = value[:cut], value[cut:]
        op = term.strip()[0] if term.strip()[0] in "+~" else "+"
        kept = body[:k] + [(f"{op} " if k else "") + repr(keep)]
        after = body[k + 1 :]
        tail = (
            [repr(rest)] + after
            if rest
            else [_operand(t) if i == 0 else t for i, t in enumerate(after)]
        )
        return kept, tail, True
    return body, [], False


def _expr(terms: Sequence[str]) -> str:
    text = "".join(terms).strip()
    return text[1:].strip() if text[:1] in "+~" else text


# -- verification -------------------------------------------------------------------------------

PROBES: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Hi there."}, {"role": "assistant", "content": "Hello!"}],
    [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "Green.\n"},
    ],
    [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4."},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "6."},
    ],
]

Render = Callable[[str, list[dict[str, Any]]], tuple[str, list[tuple[int, int]]]]


@dataclass
class Verification:
    """Result of rendering probes with the original and the annotated template."""

    byte_identical: bool
    covers_answers: bool
    excludes_headers: bool
    probes: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.byte_identical
            and self.covers_answers
            and self.excludes_headers
            and self.probes > 0
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "byte_identical": self.byte_identical,
            "covers_answers": self.covers_answers,
            "excludes_headers": self.excludes_headers,
            "probes": self.probes,
            "problems": list(self.problems),
        }


def verify_annotation(
    original: str, annotated: str, render: Render, probes: Sequence[list[dict[str, str]]] = PROBES
) -> Verification:
    """Render each probe with both templates: texts must match byte for byte, every assistant
    answer must lie inside a generation span, and no span may hold a role header."""
    result = Verification(True, True, True, 0)
    for n, probe in enumerate(probes):
        try:
            want, _ = render(original, probe)
        except Exception:  # the template refuses this probe (e.g. no system role): skip it
            continue
        got, spans = render(annotated, probe)
        result.probes += 1
        if got.encode() != want.encode():
            result.byte_identical = False
            result.problems.append(f"probe {n}: the annotated template renders different text")
        generated = "".join(got[s:e] for s, e in spans)
        last = probe[-1]["content"].split("</think>")[-1].strip()
        if not spans or last not in generated:
            result.covers_answers = False
            result.problems.append(f"probe {n}: the last answer is outside every generation span")
        answers = [m["content"] for m in probe if m["role"] == "assistant"]
        if any(ROLE_WORD.search(_without(got[s:e], answers)) for s, e in spans):
            result.excludes_headers = False
            result.problems.append(f"probe {n}: a generation span holds a role header")
    return result


def _without(text: str, answers: Sequence[str]) -> str:
    for answer in answers:
        for part in answer.split("</think>"):
            text = text.replace(part.strip(), "")
    return text
