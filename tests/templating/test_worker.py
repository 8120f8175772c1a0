"""The worker pool, on real processes: results, error mapping, timeouts, crashes, memory."""

from __future__ import annotations

import os
import threading
import time

import jinja2
import pytest

from app.errors import BusyError, InputError, LimitError, TemplateError
from app.settings import Settings
from app.templating import worker
from app.templating.worker import WorkerPool, run_in_worker
from tests.templating import worker_tasks as tasks

TIMEOUT_MS = 600
BOMB = (
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
    "{{ '' }}{% endfor %}{% endfor %}{% endfor %}"
)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(
        render_timeout_ms=TIMEOUT_MS,
        template_workers=2,
        max_worker_memory_mb=256,
        max_render_chars=100_000,
    )


def test_round_trip_is_json_data(settings):
    assert run_in_worker(tasks.echo, 1, (2, "é"), key=[None, 1.5], settings=settings) == {
        "args": [1, [2, "é"]],
        "kwargs": {"key": [None, 1.5]},
    }
    assert run_in_worker(tasks.pid, settings=settings) != os.getpid()
    lone = "\ud83d broken surrogate"
    assert run_in_worker(tasks.echo, lone, settings=settings)["args"] == [lone]


def test_a_task_runs_with_the_collector_paused_and_its_imports_frozen(settings):
    # As an in-process render does; the worker collects what a task left after replying.
    for _ in range(3):  # whichever worker of the pool answers
        state = run_in_worker(tasks.collector_state, settings=settings)
        assert state["enabled"] is False
        assert state["frozen"] > 1000


def test_renders_a_template(settings):
    source = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    expected = jinja2.Environment().from_string(source).render(messages=messages)
    assert (
        run_in_worker(tasks.render_source, source, {"messages": messages}, settings=settings)
        == expected
    )


def _reference_syntax_line(source: str) -> int:
    with pytest.raises(jinja2.TemplateSyntaxError) as caught:
        jinja2.Environment().parse(source)
    return caught.value.lineno


@pytest.mark.parametrize(
    "source", ["hello\n{{ x }\n", "{% for m in messages %}\n\n{{ m }}\n", "a\nb\nc\n{% endif %}"]
)
def test_syntax_error_names_the_line(settings, source):
    with pytest.raises(TemplateError) as caught:
        run_in_worker(tasks.render_source, source, {"messages": []}, settings=settings)
    line = _reference_syntax_line(source)
    assert f"line {line}" in caught.value.message
    assert "syntax error" in caught.value.message
    assert caught.value.field == "template"


def test_raise_exception_gives_its_message_and_line(settings):
    source = (
        "{% for m in messages %}\n{% if m.role == 'tool' %}\n"
        "{{ raise_exception('no tools') }}\n{% endif %}{% endfor %}"
    )
    with pytest.raises(TemplateError) as caught:
        run_in_worker(
            tasks.render_source, source, {"messages": [{"role": "tool"}]}, settings=settings
        )
    assert "no tools" in caught.value.message and "line 3" in caught.value.message


def test_limit_inside_the_template_keeps_its_setting_and_gains_a_line(settings):
    with pytest.raises(LimitError) as caught:
        run_in_worker(tasks.render_source, "ok\n{{ range(10**9) | length }}", {}, settings=settings)
    assert caught.value.setting == "max_range"
    assert "max_range" in caught.value.message and "line 2" in caught.value.message


def test_app_error_raised_by_the_function_keeps_its_class(settings):
    with pytest.raises(InputError) as caught:
        run_in_worker(tasks.refuse, "messages", settings=settings)
    assert type(caught.value) is InputError
    assert caught.value.field == "messages" and caught.value.message == "messages is wrong"


def test_timeout_kills_the_worker_and_the_next_request_is_served(settings):
    pids = {run_in_worker(tasks.pid, settings=settings) for _ in range(6)}
    started = time.monotonic()
    with pytest.raises(LimitError) as caught:
        run_in_worker(tasks.render_source, BOMB, {}, settings=settings)
    elapsed = time.monotonic() - started
    assert "render timed out" in caught.value.message
    assert caught.value.setting == "render_timeout_ms"
    assert TIMEOUT_MS / 1000 <= elapsed < TIMEOUT_MS / 1000 + 1.0
    assert run_in_worker(tasks.render_source, "{{ 1 + 1 }}", {}, settings=settings) == "2"
    gone = [pid for pid in pids if not _alive(pid)]
    assert len(gone) == 1, "exactly the worker that timed out was killed"
    assert len(worker.get_pool(settings)._all) == settings.template_workers


def test_timeout_argument_overrides_the_setting(settings):
    started = time.monotonic()
    with pytest.raises(LimitError, match="render timed out after 200 ms"):
        run_in_worker(tasks.sleep, 5, settings=settings, timeout_s=0.2)
    assert time.monotonic() - started < 1.2


def test_memory_ceiling(settings):
    assert run_in_worker(tasks.allocate, 64, settings=settings) == 64 * 1024 * 1024
    with pytest.raises(LimitError) as caught:
        run_in_worker(tasks.allocate, 4096, settings=settings)
    assert caught.value.setting == "max_worker_memory_mb"
    assert run_in_worker(tasks.allocate, 64, settings=settings) == 64 * 1024 * 1024


def test_crash_is_a_template_error_and_the_pool_recovers(settings):
    with pytest.raises(TemplateError, match="exit code 3"):
        run_in_worker(tasks.die, settings=settings)
    after = run_in_worker(tasks.echo, "after", settings=settings)
    assert after == {"args": ["after"], "kwargs": {}}


def test_unserialisable_result_is_an_error_not_a_pickle(settings):
    with pytest.raises(TemplateError, match="JSON"):
        run_in_worker(tasks.unserialisable, settings=settings)


def test_needs_a_module_level_function(settings):
    with pytest.raises(TypeError, match="module-level"):
        run_in_worker(lambda: 1, settings=settings)


def test_workers_run_in_parallel(settings):
    results: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(run_in_worker(tasks.sleep, 0.4, settings=settings))
        )
        for _ in range(2)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["slept", "slept"]
    assert time.monotonic() - started < 0.75


def test_busy_pool_answers_429(monkeypatch):
    monkeypatch.setattr(worker, "ACQUIRE_TIMEOUT_S", 0.2)
    pool = WorkerPool(size=1, memory_mb=256, max_reply_bytes=1 << 20)
    try:
        holder = threading.Thread(target=pool.run, args=(tasks.sleep, (0.8,), {}, 2.0))
        holder.start()
        deadline = time.monotonic() + 10
        while not pool._idle.empty():  # until the holder has taken the only worker
            assert time.monotonic() < deadline, "the holder never took the worker"
            time.sleep(0.005)
        with pytest.raises(BusyError) as caught:
            pool.run(tasks.pid, (), {}, 2.0)
        assert caught.value.headers.get("Retry-After")
        holder.join()
    finally:
        pool.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child that was not reaped yet shows as a zombie.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"
