"""A Jinja sandbox that refuses to build huge values, checked before the memory is allocated.

`ImmutableSandboxedEnvironment` stops code execution but not denial of service: `'a' * 10**8`,
`9 ** 99999999`, `range(10**9)` or a string doubled in a loop each allocate gigabytes or burn
minutes in one step. This environment checks the size of the result of every amplifying
operation (`*`, `**`, `+`, `%`, `~`, `range`, padding/replacing/joining methods and filters,
widths nested in `str.format` fields, `tojson`'s indent and separators) before running it and
raises `LimitError` naming the setting to change.

Design concession: the checks bound single steps, not whole renders. A template can still build
many values just under the cap, or loop for a long time; the worker process
(app.templating.worker) adds the wall-clock limit and a memory ceiling, and `generate_limited`
stops the output stream at the cap.

Example:
    env = LimitedSandboxedEnvironment(max_range=100, max_output_chars=1000)
    env.from_string("{{ 'a' * 10**8 }}").render()   # -> LimitError(setting="max_render_chars")
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2.compiler import CodeGenerator
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

from app.errors import InputError, LimitError, TooLargeError
from app.settings import Settings

MIN_JINJA2 = (3, 1, 6)
# Integers above this many bits only come from abuse (a 4096-bit key is 4096 bits); Python also
# needs quadratic time to print them.
MAX_INT_BITS = 16_384


def _version_tuple(version: str) -> tuple[int, ...]:
    """Example: "3.1.6" -> (3, 1, 6); "3.2.0rc1" -> (3, 2, 0)."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return (0,)
    return tuple(int(part or 0) for part in match.groups())


def check_jinja2_version(version: str | None = None) -> None:
    """Refuse a jinja2 with known sandbox escapes (CVE-2024-56326, CVE-2025-27516)."""
    found = jinja2.__version__ if version is None else version
    if _version_tuple(found) < MIN_JINJA2:
        wanted = ".".join(map(str, MIN_JINJA2))
        raise ImportError(
            f"Maskscope needs jinja2>={wanted} to render untrusted chat templates safely "
            f"(older versions have sandbox escapes); found {found}. "
            f"Run: pip install -U 'jinja2>={wanted}'"
        )


check_jinja2_version()


class _BoundedCodeGenerator(CodeGenerator):
    """Routes the `~` operator through the environment so a doubling loop is caught."""

    def visit_Concat(self, node: Any, frame: Any) -> None:
        self.write("environment.bounded_text(")
        super().visit_Concat(node, frame)
        self.write(")")


_SIZED = (str, bytes, list, tuple)
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_NUMBER = re.compile(r"\d+")


class ChatTemplateSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with a short answer for the attributes templates read on every
    turn (`loop.first`, `content.strip`).

    A string or a loop context is neither an internal object (function, frame, type...) nor a
    known mutable container, so Jinja's full check comes down to the underscore rule for them;
    it is answered without the isinstance tests against the mutable-container ABCs.
    """

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if type(obj) is str or isinstance(obj, LoopContext):
            return not attr.startswith("_")
        return super().is_safe_attribute(obj, attr, value)


class LimitedSandboxedEnvironment(ChatTemplateSandbox):
    """ImmutableSandboxedEnvironment whose amplifying operations are size-checked first.

    `max_range` bounds `range()` (setting max_range); `max_output_chars` bounds every string or
    sequence a single operation may build (setting max_render_chars).
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, *args: Any, max_range: int, max_output_chars: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_range = max_range
        self.max_output_chars = max_output_chars
        self.globals["range"] = self.bounded_range
        for name, check in (
            ("center", self._check_center),
            ("indent", self._check_indent),
            ("replace", self._check_replace),
            ("join", self._check_join),
            ("format", self._check_format_filter),
        ):
            self.filters[name] = _guarded(self.filters[name], check)

    def add_tojson(self, tojson: Callable[..., str]) -> None:
        """Install the `tojson` filter, checked first like the other amplifiers."""
        self.filters["tojson"] = _guarded(tojson, self._check_json)

    # -- the checks -----------------------------------------------------------------------------

    def too_long(self, size: int, what: str) -> LimitError:
        return LimitError(
            f"The template tried to build {what} of {size:,} characters or items; the limit is "
            f"{self.max_output_chars:,} (max_render_chars setting).",
            setting="max_render_chars",
        )

    def check_size(self, size: int, what: str = "a value") -> None:
        if size > self.max_output_chars:
            raise self.too_long(size, what)

    def bounded_text(self, value: Any) -> Any:
        self.check_size(len(value), "a string")
        return value

    def bounded_range(self, *args: Any) -> range:
        rng = range(*args)
        if len(rng) > self.max_range:
            raise LimitError(
                f"range() of {len(rng):,} items is over the limit of {self.max_range:,} "
                "(max_range setting).",
                setting="max_range",
            )
        return rng

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "+" and type(left) is str and type(right) is str:
            # Templates join strings with + on every message: checked and done here.
            self.check_size(len(left) + len(right), "a concatenation")
            return left + right
        if operator_ == "*":
            self._check_multiply(left, right)
        elif operator_ == "**":
            self._check_power(left, right)
        elif operator_ == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
            self.check_size(len(left) + len(right), "a concatenation")
        elif operator_ == "%" and isinstance(left, str):
            self._check_format(left, right if isinstance(right, tuple) else (right,))
        return super().call_binop(context, operator_, left, right)

    def _check_multiply(self, left: Any, right: Any) -> None:
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SIZED) and isinstance(times, int):
                self.check_size(len(seq) * max(times, 0), "a repeated sequence")
        if _is_int(left) and _is_int(right):
            _check_bits(abs(left).bit_length() + abs(right).bit_length(), "product")

    def _check_power(self, base: Any, exponent: Any) -> None:
        if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
            # bit_length(b ** e) is about e * bit_length(b): known before computing it.
            _check_bits(abs(base).bit_length() * exponent, "power")

    def _check_format(
        self, fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any] | None = None
    ) -> None:
        widths = [int(n) for n in _NUMBER.findall(fmt)]
        if "*" in fmt:
            widths += [a for a in args if _is_int(a)]
        if "{" in fmt and kwargs is not None:
            widths += _nested_widths(SandboxedFormatter(self), fmt, args, kwargs)
        for width in widths:
            self.check_size(width, "a padded field")

    def _check_center(self, value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
        if _is_int(width):
            self.check_size(width, "a padded string")

    def _check_indent(self, value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
        unit = width if _is_int(width) else len(str(width))
        self.check_size(len(str(value)) + unit * (str(value).count("\n") + 1), "an indented string")

    def _check_replace(self, value: Any, old: Any, new: Any, count: Any = None, **_: Any) -> None:
        text, old, new = str(value), str(old), str(new)
        hits = len(text) + 1 if old == "" else text.count(old)
        if _is_int(count) and count >= 0:
            hits = min(hits, count)
        self.check_size(len(text) + hits * len(new), "a replaced string")

    def _check_join(self, value: Any, d: Any = "", *_: Any, **__: Any) -> None:
        if isinstance(value, (list, tuple)):
            parts = sum(len(x) if isinstance(x, str) else 0 for x in value)
            self.check_size(parts + len(str(d)) * max(len(value) - 1, 0), "a joined string")

    def _check_format_filter(self, value: Any, *args: Any, **_: Any) -> None:
        self._check_format(str(value), args)

    def _check_json(self, value: Any, ensure_ascii: Any = False, *args: Any, **kwargs: Any) -> None:
        self.check_size(_json_padding(value, self.max_output_chars, *args, **kwargs), "a JSON text")

    # -- method calls on strings ----------------------------------------------------------------

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # str.format reaches here wrapped by the sandbox; the wrapper keeps the bound method.
        method = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            __self._check_str_method(owner, getattr(method, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _check_str_method(
        self, text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if name in _WIDTH_METHODS and args and _is_int(args[0]):
            self.check_size(args[0], "a padded string")
        elif name == "expandtabs":
            size = args[0] if args and _is_int(args[0]) else kwargs.get("tabsize", 8)
            tab = size if _is_int(size) else 8
            self.check_size(len(text) + text.count("\t") * tab, "a string")
        elif name == "replace" and len(args) >= 2:
            self._check_replace(text, *args[:3])
        elif name == "join" and args:
            self._check_join(list(args[0]) if isinstance(args[0], (list, tuple)) else [], text)
        elif name == "format":
            self._check_format(text, args, kwargs)
        elif name == "format_map" and args and isinstance(args[0], Mapping):
            self._check_format(text, (), args[0])


def _nested_widths(
    formatter: SandboxedFormatter, fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> list[int]:
    """The numbers that `{:{w}}`-style fields put into format specs (`w=99999999`).

    Each nested field is looked up as `str.format` will (through the sandbox's formatter, so
    no unsafe attribute is read); the digits of its str() and repr() bound the width, the
    precision and any count it can supply.
    Example: _nested_widths(f, "{:{w}}", ("a",), {"w": 5}) -> [5, 5]
    """
    widths: list[int] = []
    auto = 0  # `{}` fields are numbered in order, the outer field before its nested ones
    try:
        for _, outer, spec, _ in string.Formatter().parse(fmt):
            auto += outer == ""
            for _, name, _, _ in string.Formatter().parse(spec or ""):
                if name is None:
                    continue
                if name == "":
                    name, auto = str(auto), auto + 1
                value, _ = formatter.get_field(name, args, kwargs)
                widths += [int(n) for n in _NUMBER.findall(f"{value!s} {value!r}")]
    except (ValueError, LookupError, AttributeError, TypeError):
        return widths  # str.format itself will raise the same error
    return widths


def _json_padding(
    value: Any, cap: int, indent: Any = None, separators: Any = None, *_: Any, **__: Any
) -> int:
    """At most how many characters json.dumps writes for indentation and separators: an item
    at depth d is indented by fewer than d units, so the value's shape bounds them before
    dumping.

    Example: _json_padding([1, 2], 100, indent=4) -> 20
    """
    unit = indent if _is_int(indent) else len(indent) if isinstance(indent, str) else 0
    seps = (
        sum(len(s) for s in separators if isinstance(s, str))
        if isinstance(separators, (list, tuple))
        else 0
    )
    if max(unit, seps) > cap:
        return max(unit, seps)
    if unit <= 0 and seps <= 2:
        return 0
    items, depths = _json_shape(value, cap)
    return max(unit, 0) * depths + seps * items


def _json_shape(value: Any, cap: int) -> tuple[int, int]:
    """(items, sum of their nesting depths) of a JSON-like value, counted up to `cap` items;
    only containers are queued, so counting a long flat list allocates nothing per item.

    Example: _json_shape({"a": [1, 2]}, 100) -> (4, 9)   # depths 1 + 2 + 3 + 3
    """
    items, depths, pending = 1, 1, [(value, 1)]
    while pending and items <= cap:
        node, depth = pending.pop()
        if not isinstance(node, (Mapping, list, tuple)):
            continue
        children = node.values() if isinstance(node, Mapping) else node
        items += len(children)
        depths += len(children) * (depth + 1)
        pending += [(c, depth + 1) for c in children if isinstance(c, (Mapping, list, tuple))]
    return items, depths


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise LimitError(
            f"The template tried to compute an integer {what} of about {bits:,} bits; Maskscope "
            f"allows {MAX_INT_BITS:,} bits in untrusted templates.",
            setting=None,
        )


def _guarded(fn: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    """Wrap a filter so `check` sees its arguments first; keeps Jinja's pass_* markers."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(*_filter_args(fn, args), **kwargs)
        return fn(*args, **kwargs)

    for marker in ("jinja_pass_arg",):
        if hasattr(fn, marker):
            setattr(guarded, marker, getattr(fn, marker))
    guarded.__name__ = getattr(fn, "__name__", "filter")
    return guarded


def _filter_args(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
    # Filters marked pass_eval_context / pass_environment / pass_context get that object first.
    return args[1:] if hasattr(fn, "jinja_pass_arg") else args


def generate_limited(
    template: jinja2.Template, max_chars: int, context: Mapping[str, Any] | None = None
) -> Iterator[str]:
    """Yield the template's output chunks, stopping with LimitError once `max_chars` is passed.

    Example: "".join(generate_limited(env.from_string("{{ x }}"), 10, {"x": "hi"})) -> "hi"
    """
    produced = 0
    for chunk in template.generate(**dict(context or {})):
        produced += len(chunk)
        if produced > max_chars:
            raise LimitError(
                f"The template produced more than {max_chars:,} characters "
                "(max_render_chars setting).",
                setting="max_render_chars",
            )
        yield chunk


def render_limited(
    template: jinja2.Template, max_chars: int, context: Mapping[str, Any] | None = None
) -> str:
    """Render with the output cap. Example: render_limited(t, 4_000_000, {"messages": [...]})."""
    return "".join(generate_limited(template, max_chars, context))


def check_template_size(source: str, settings: Settings) -> None:
    """TooLargeError (413) for a template over the max_template_bytes setting; InputError for
    one holding a lone surrogate (valid JSON, but no UTF-8 text)."""
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InputError(
            f"The template holds a lone surrogate at character {exc.start:,}; send valid "
            "Unicode text.",
            field="template",
        ) from None
    if size > settings.max_template_bytes:
        raise TooLargeError(
            f"The template is {size:,} bytes; the limit is "
            f"{settings.max_template_bytes:,} (max_template_bytes setting).",
            field="template",
            setting="max_template_bytes",
        )
