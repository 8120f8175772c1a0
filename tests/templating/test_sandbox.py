"""The chat-template environment offers transformers' globals inside the limited sandbox."""

from __future__ import annotations

import jinja2
import pytest

from app.errors import LimitError
from app.templating.limits import LimitedSandboxedEnvironment
from app.templating.sandbox import build_environment, has_generation_tags


def _render(source: str, **context) -> str:
    return build_environment(1000, 100_000).from_string(source).render(**context)


def test_environment_is_the_limited_sandbox_with_transformers_options():
    env = build_environment(10, 100)
    assert isinstance(env, LimitedSandboxedEnvironment)
    assert env.trim_blocks and env.lstrip_blocks
    with pytest.raises(LimitError):
        env.from_string("{% for i in range(11) %}{% endfor %}").render()


def test_globals_behave_like_transformers():
    assert _render("{{ {'a': '<b>'} | tojson }}") == '{"a": "<b>"}'
    assert _render("{{ x | tojson(indent=2) }}", x=[1]) == "[\n  1\n]"
    assert len(_render("{{ strftime_now('%Y-%m-%d') }}")) == 10
    assert _render("{% set ns = namespace(n=1) %}{% set ns.n = 2 %}{{ ns.n }}") == "2"
    assert _render("{{ dict(a=1)['a'] }}") == "1"
    assert (
        _render("{% for i in [1, 2, 3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}")
        == "1"
    )
    with pytest.raises(jinja2.TemplateError, match="stop here"):
        _render("{{ raise_exception('stop here') }}")
    with pytest.raises(jinja2.exceptions.SecurityError):
        _render("{% set ns = namespace(_x=1) %}")
    with pytest.raises(jinja2.exceptions.SecurityError):
        _render("{{ ''.__class__.__mro__ }}")


def test_generation_tags_are_detected_and_rendered_transparently():
    source = "{% generation %}{{ x }}{% endgeneration %}"
    assert has_generation_tags(source)
    assert not has_generation_tags("{{ x }} generation")
    assert _render(source, x="hi") == "hi"


def test_short_attribute_answer_equals_jinjas_full_check():
    """Strings and loop contexts skip Jinja's isinstance tests; the answer must not change."""
    from jinja2.runtime import LoopContext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from app.templating.limits import ChatTemplateSandbox

    loop = LoopContext(iter([1, 2]), None, None)
    names = [
        "strip",
        "first",
        "last",
        "index",
        "cycle",
        "_after",
        "__class__",
        "__init__",
        "format",
        "mro",
        "__globals__",
        "length",
        "changed",
        "_iterator",
    ]
    full, short = ImmutableSandboxedEnvironment(), ChatTemplateSandbox()
    for obj in ("text", loop):
        for name in names:
            value = getattr(obj, name, None)
            assert short.is_safe_attribute(obj, name, value) == full.is_safe_attribute(
                obj, name, value
            ), (obj, name)
    # Everything else still gets the full check: a list's mutating methods stay refused.
    assert not short.is_safe_attribute([], "append", [].append)
    source = "{% for m in ms %}{{ loop.first }}{{ m.strip() }}{{ m.__class__ }}{% endfor %}"
    assert (
        short.from_string(source).render(ms=[" a "])
        == full.from_string(source).render(ms=[" a "])
        == "Truea"
    )
