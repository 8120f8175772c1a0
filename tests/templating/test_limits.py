"""LimitedSandboxedEnvironment: bombs fail before allocating; ordinary templates are unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from app.errors import LimitError
from app.templating.limits import (
    LimitedSandboxedEnvironment,
    check_jinja2_version,
    generate_limited,
    render_limited,
)
from app.templating.sandbox import build_environment

CAP = 100_000
RANGE = 1_000


@pytest.fixture(scope="module")
def env() -> LimitedSandboxedEnvironment:
    return LimitedSandboxedEnvironment(max_range=RANGE, max_output_chars=CAP)


BOMBS = [
    ("{{ 'a' * 10**8 }}", "max_render_chars"),
    ("{{ 10**8 * 'a' }}", "max_render_chars"),
    ("{{ [0] * 10**9 }}", "max_render_chars"),
    ("{{ 7 ** 99999999 }}", None),
    ("{% set x = 2 ** 9000 %}{{ x * x * x }}", None),
    ("{{ range(10**9) | length }}", "max_range"),
    ("{% for i in range(2000) %}{% endfor %}", "max_range"),
    (
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
            "{% endfor %}"
        ),
        "max_render_chars",
    ),
    (
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
            "{% endfor %}"
        ),
        "max_render_chars",
    ),
    ("{{ '%999999999d' % 1 }}", "max_render_chars"),
    ("{{ '%*d' % (999999999, 1) }}", "max_render_chars"),
    ("{{ '{:>999999999}'.format(1) }}", "max_render_chars"),
    ("{{ 'x'.ljust(999999999) }}", "max_render_chars"),
    ("{{ 'x'.zfill(999999999) }}", "max_render_chars"),
    ("{{ 'x' | center(999999999) }}", "max_render_chars"),
    ("{{ 'a\nb' | indent(999999999) }}", "max_render_chars"),
    ("{{ ('a' * 1000).replace('a', 'b' * 1000) }}", "max_render_chars"),
    ("{{ ('a' * 1000) | replace('a', 'b' * 1000) }}", "max_render_chars"),
    ("{{ ['a' * 60000, 'b' * 60000] | join }}", "max_render_chars"),
    ("{{ ('a' * 99999).join(['x'] * 3) }}", "max_render_chars"),
    ("{{ '{:{w}}'.format('a', w=99999999) }}", "max_render_chars"),
    ("{{ '{:{}}'.format('a', 99999999) }}", "max_render_chars"),
    ("{{ '{0:{1}}'.format('a', '99999999') }}", "max_render_chars"),
    ("{{ '{:{w[0]}}'.format('a', w=[99999999]) }}", "max_render_chars"),
    ("{{ '{:.{p}f}'.format(1.5, p=99999999) }}", "max_render_chars"),
    ("{{ '{:{w}}'.format_map({'w': 99999999}) }}", "max_render_chars"),
]


@pytest.mark.parametrize(("source", "setting"), BOMBS)
def test_bomb_fails_fast_without_allocating(env, source, setting):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(LimitError) as caught:
            env.from_string(source).render()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 8 * CAP, f"{peak:,} bytes allocated"
    assert caught.value.setting == setting
    if setting:
        assert setting in caught.value.message


JSON_BOMBS = [
    "{{ [1, 2] | tojson(indent=10**7) }}",
    "{{ [1, 2] | tojson(indent=' ' * 99999) }}",
    "{{ ([[[[1]]]] * 30) | tojson(indent=1000) }}",
    "{{ ([1] * 5000) | tojson(separators=(',' * 100, ':')) }}",
    "{{ {'a': 1} | tojson(separators=(',', ':' * 10**6)) }}",
]


@pytest.mark.parametrize("source", JSON_BOMBS)
def test_tojson_indent_and_separators_are_bounded_before_dumping(source):
    env = build_environment(RANGE, CAP)
    tracemalloc.start()
    try:
        with pytest.raises(LimitError) as caught:
            env.from_string(source).render()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * CAP, f"{peak:,} bytes allocated"
    assert caught.value.setting == "max_render_chars"
    assert "max_render_chars" in caught.value.message


def test_ordinary_tojson_and_nested_formats_still_render():
    env = build_environment(RANGE, CAP)
    source = (
        "{{ messages | tojson(indent=4) }}|{{ messages | tojson(separators=(', ', ': ')) }}|"
        "{{ '{:{w}}|{:.{p}f}'.format('ab', 1.25, w=5, p=1) }}|{{ '{:>{}}'.format('x', 3) }}"
    )
    messages = [{"role": "user", "content": "hi", "tools": [{"a": [1, 2]}]}]
    rendered = env.from_string(source).render(messages=messages)
    assert rendered.split("|")[2:] == ["ab   ", "1.2", "  x"]
    assert json.loads(rendered.split("|")[0]) == messages


ORDINARY = [
    "{{ 'ab' * 3 }}|{{ 3 * [1, 2] }}|{{ 2 ** 100 }}|{{ 2 ** -1 }}|{{ 1.5 ** 2 }}|{{ -3 * 4 }}",
    "{{ 'a' + 'b' }}|{{ [1] + [2] }}|{{ 1 + 2 }}|{{ 'x' ~ 1 ~ none }}|{{ 7 % 3 }}",
    "{{ '%05.1f' % 2.25 }}|{{ '%s-%s' % ('a', 2) }}",
    "{% for i in range(3, 30, 7) %}{{ i }},{% endfor %}{{ range(5) | list }}",
    "{{ 'x' | center(9) }}|{{ 'a\nb' | indent(2, first=true) }}|{{ 'aXa' | replace('a', 'yy') }}",
    "{{ ['a', 'b'] | join(', ') }}|{{ '-'.join(['p', 'q']) }}|{{ '{}={:>4}'.format('k', 7) }}",
    "{{ 'hi'.ljust(5) }}|{{ '7'.zfill(3) }}|{{ 'a\tb'.expandtabs(4) }}|{{ 'q'.replace('q', 'r') }}",
    (
        "{% set ns = namespace(t='') %}{% for m in messages %}{% set ns.t = ns.t ~ m.role[0] %}"
        "{% endfor %}{{ ns.t }}|{{ messages | map(attribute='content') | join('/') }}"
    ),
]


@pytest.mark.parametrize("source", ORDINARY)
def test_ordinary_templates_render_as_in_the_plain_sandbox(env, source):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    reference = ImmutableSandboxedEnvironment().from_string(source).render(messages=messages)
    assert env.from_string(source).render(messages=messages) == reference


@pytest.mark.parametrize(
    "source",
    [
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ messages.append(1) }}",
    ],
)
def test_sandbox_escapes_are_refused(env, source):
    with pytest.raises(SecurityError):
        env.from_string(source).render(messages=[])


def test_output_cap_stops_while_generating(env):
    template = env.from_string("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}")
    chunks = 0
    with pytest.raises(LimitError) as caught:
        for _ in generate_limited(template, 10_000):
            chunks += 1
    assert caught.value.setting == "max_render_chars"
    assert chunks <= 11  # stopped at the cap, not after the whole render
    assert render_limited(template, 1_000_000) == "x" * 1_000_000


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("3.1.5", False),
        ("3.0.3", False),
        ("2.11.3", False),
        ("3.1.6", True),
        ("3.2.0", True),
        ("3.2.0rc1", True),
        ("4.0", True),
    ],
)
def test_jinja2_version_check(version, ok):
    if ok:
        check_jinja2_version(version)
    else:
        with pytest.raises(ImportError, match=r"jinja2>=3\.1\.6"):
            check_jinja2_version(version)


def test_import_refuses_an_old_jinja2():
    code = "import jinja2; jinja2.__version__ = '3.1.5'\nimport app.templating.limits\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "jinja2>=3.1.6" in result.stderr
