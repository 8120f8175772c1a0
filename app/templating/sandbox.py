"""The Jinja environment chat templates run in: transformers' globals inside our limited sandbox.

Chat templates are written against `transformers`' environment: `trim_blocks`, `lstrip_blocks`,
the `loopcontrols` extension, `raise_exception`, `strftime_now`, a `tojson` filter that does not
escape HTML, a restricted `dict` and `namespace`, and the `{% generation %}` block. We rebuild that
environment on `LimitedSandboxedEnvironment` so output is identical to `apply_chat_template` while
amplifying operations stay bounded.

Design concession: `{% generation %}` spans are recorded through a context variable holding the
number of characters already produced, so the caller must consume the render generator itself
(see app.templating.tracking) instead of calling `Template.render`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.errors import TemplateError
from app.templating.limits import ChatTemplateSandbox, LimitedSandboxedEnvironment


class GenerationRecorder:
    """Collects `{% generation %}` spans as (start, end) character offsets into the output."""

    def __init__(self) -> None:
        self.produced = 0
        self.spans: list[tuple[int, int]] = []


_RECORDER: ContextVar[GenerationRecorder | None] = ContextVar("generation_recorder", default=None)


@contextmanager
def recording(recorder: GenerationRecorder) -> Iterator[GenerationRecorder]:
    """Activate `recorder` for the `{% generation %}` blocks rendered inside the block."""
    token = _RECORDER.set(recorder)
    try:
        yield recorder
    finally:
        _RECORDER.reset(token)


class GenerationExtension(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`: renders its body and records where it landed."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.CallBlock:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        block = jinja2.nodes.CallBlock(self.call_method("_generation", []), [], [], body)
        block.set_lineno(lineno)
        return block

    def _generation(self, caller: Any) -> str:
        text = str(caller())
        recorder = _RECORDER.get()
        if recorder is not None:
            # Everything yielded before this block has been consumed, so `produced` is its start.
            recorder.spans.append((recorder.produced, recorder.produced + len(text)))
        return text


def _raise_exception(message: Any) -> None:
    raise jinja2.exceptions.TemplateError(str(message))


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: Any = None,
    separators: Any = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson escapes <, >, & and ' for HTML; chat templates expect plain JSON.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class _TemplateDict:
    """`dict(...)` for templates without handing them the real type."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    """A namespace that refuses underscore attributes (no route to CPython internals)."""

    def __init__(*args: Any, **kwargs: Any) -> None:
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _TemplateNamespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"Templates may not store underscore attributes on a namespace ({name!r})."
            )


def build_environment(
    max_range: int, max_output_chars: int, limited: bool = True
) -> ImmutableSandboxedEnvironment:
    """The chat-template environment with transformers' options and globals.

    `limited=False` (only for the templates we ship, verified by sha256) skips the per-operation
    size checks, which cost about a microsecond per `+` in a template; the sandbox stays.
    """
    options = {
        "trim_blocks": True,
        "lstrip_blocks": True,
        "extensions": [GenerationExtension, jinja2.ext.loopcontrols],
    }
    env: ImmutableSandboxedEnvironment
    if limited:
        env = LimitedSandboxedEnvironment(
            max_range=max_range, max_output_chars=max_output_chars, **options
        )
    else:
        env = ChatTemplateSandbox(**options)
    if isinstance(env, LimitedSandboxedEnvironment):
        env.add_tojson(_tojson)
    else:
        env.filters["tojson"] = _tojson
    env.globals.update(
        raise_exception=_raise_exception,
        strftime_now=_strftime_now,
        dict=_TemplateDict(),
        namespace=_TemplateNamespace,
    )
    return env


@lru_cache(maxsize=8)
def _environment(
    max_range: int, max_output_chars: int, limited: bool = True
) -> ImmutableSandboxedEnvironment:
    return build_environment(max_range, max_output_chars, limited)


@lru_cache(maxsize=64)
def compile_template(
    source: str, max_range: int, max_output_chars: int, limited: bool = True
) -> jinja2.Template:
    """Compile (cached per source and limits); syntax errors become TemplateError with the line."""
    env = _environment(max_range, max_output_chars, limited)
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"Template syntax error on line {exc.lineno}: {exc.message}.", field="template"
        ) from None


@lru_cache(maxsize=64)
def has_generation_tags(source: str) -> bool:
    """Whether the template marks assistant output with `{% generation %}`."""
    env = _environment(1, 1)
    try:
        ast = env.parse(source)
    except jinja2.TemplateSyntaxError:
        return False
    return _call_blocks(ast)


def _call_blocks(ast: jinja2.nodes.Template) -> bool:
    return any(
        isinstance(node.call, jinja2.nodes.Call)
        and isinstance(node.call.node, jinja2.nodes.ExtensionAttribute)
        and node.call.node.name == "_generation"
        for node in ast.find_all(jinja2.nodes.CallBlock)
    )
