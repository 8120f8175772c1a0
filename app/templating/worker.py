"""Run untrusted template code in warm, killable worker processes under a wall-clock limit.

A chat template pasted by a user is code. The sandbox (app.templating.limits) stops it from
reaching Python internals and from building huge values in one step, but only a separate process
can be stopped reliably when it loops: threads cannot be killed. A small pool of workers is kept
warm (started at server start-up, modules pre-imported) so the common case costs one round trip;
a worker that times out, runs out of memory or dies is killed and replaced in the background while
the next request is served by another one.

How to use it (engine code, for `dialect="custom"`):

    from app.templating.worker import run_in_worker
    result = run_in_worker(render_untrusted, source, messages, settings=settings)

- `fn` must be a module-level function (the worker imports it by module and name); arguments are
  pickled to the worker.
- `fn` must return JSON data (dict, list, str, int, float, bool, None; tuples come back as lists):
  the server never unpickles what a worker sends, so a worker subverted by a template cannot attack
  the server through its answer.
- Errors arrive as app.errors exceptions: an app.errors error raised by `fn` keeps its class,
  message, field and setting; Jinja syntax errors, `raise_exception(...)`, sandbox violations and
  other exceptions become TemplateError with the template line; running past `timeout_s`
  (default: the render_timeout_ms setting) becomes LimitError "render timed out"; exhausting the
  memory ceiling (max_worker_memory_mb) becomes LimitError; no free worker for a long time
  becomes BusyError (429).
- Add the module of `fn` to PRELOAD_MODULES (one line) so fresh workers import it before the first
  request rather than during it.

Design concession: each call pays a pipe round trip and pickling (about a millisecond for a large
conversation), and a pool of N workers renders at most N untrusted templates at once; trusted,
bundled templates can render in-process instead. A task runs with the cyclic garbage collector
paused, as an in-process render does (app.chat.collector): its collections cost a third of a
1000-message render. The young objects are collected once its reply is sent, so a template
that makes reference cycles in a loop meets the memory ceiling sooner (max_worker_memory_mb).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import gc
import importlib
import json
import logging
import os
import pickle
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe
from typing import Any

import anyio.from_thread
import orjson

from app import errors
from app.chat.collector import collector_paused, freeze_once
from app.settings import Settings

# Importing the limits runs their jinja2>=3.1.6 check in every process that can start workers.
from app.templating.limits import check_jinja2_version

log = logging.getLogger(__name__)

# Modules every worker imports at start-up, before its first task.
PRELOAD_MODULES: list[str] = [
    "jinja2",
    "app.templating.limits",
    "app.templating.tracking",
    "app.tokenizers.counting",
]
# A worker not "ready" by then is considered broken (imports can be slow on a busy box).
START_TIMEOUT_S = 60.0
# How long a request may wait for a free worker before getting 429, how many may wait per worker
# (more get 429 at once), and the Retry-After those answers advertise.
ACQUIRE_TIMEOUT_S = 30.0
WAITING_PER_WORKER = 8
RETRY_AFTER_S = 5
# How much lower than the server's a worker's CPU priority is (nice(1) increment).
WORKER_NICENESS = 10
_TEMPLATE_FILENAMES = ("<template>",)


# -------------------------------------------------------------------------------------------------
# Worker side: runs in the child process.
# -------------------------------------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    """Answer tasks until the server closes the pipe. One task at a time, JSON replies only."""
    check_jinja2_version()
    for module in PRELOAD_MODULES + list(_read_preload_env()):
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    freeze_once()  # no collection walks what the imports made
    conn.send_bytes(b'{"ready": true}')
    while True:
        try:
            module, name, args, kwargs, memory_bytes, alarm_s = pickle.loads(conn.recv_bytes())
        except EOFError:
            return
        with collector_paused():  # until the reply is on its way
            reply = encode_reply(_run_task(module, name, args, kwargs, memory_bytes, alarm_s))
            conn.send_bytes(reply)
            del reply, args, kwargs
        gc.collect(0)  # what the task left (all of it young), while the server reads the reply


def _run_task(
    module: str,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    memory_bytes: int,
    alarm_s: float,
) -> dict[str, Any]:
    # The alarm is a backstop should the server die mid-task: SIGALRM's default action ends us.
    signal.setitimer(signal.ITIMER_REAL, alarm_s)
    _set_memory_ceiling(memory_bytes)
    try:
        return execute(lambda: getattr(importlib.import_module(module), name)(*args, **kwargs))
    finally:
        _set_memory_ceiling(None)
        signal.setitimer(signal.ITIMER_REAL, 0)


def execute(call: Callable[[], Any]) -> dict[str, Any]:
    """Run one task; describe the outcome as the reply: {"ok": result} or {"error": failure}."""
    try:
        return {"ok": call()}
    except BaseException as exc:
        return {"error": describe_failure(exc)}


def encode_reply(reply: dict[str, Any]) -> bytes:
    """The reply as JSON: orjson's UTF-8 (a long rendering's text and ids in a few ms), or the
    standard encoder's ASCII escapes, which carry lone surrogates (broken UTF-8 pieces) intact."""
    with contextlib.suppress(TypeError):  # orjson.JSONEncodeError: a lone surrogate
        return orjson.dumps(reply)
    try:
        return json.dumps(reply, allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as exc:
        failure = {
            "kind": "TemplateError",
            "recycle": False,
            "message": f"The render result could not be sent back as JSON: {exc}",
        }
        return json.dumps({"error": failure}).encode()


def decode_reply(data: bytes) -> dict[str, Any]:
    """A reply as `encode_reply` wrote it (ValueError when it is no JSON object)."""
    try:
        answer = orjson.loads(data)
    except orjson.JSONDecodeError:  # surrogate escapes, which orjson refuses
        answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError("the reply is not a JSON object")
    return answer


def _set_memory_ceiling(extra_bytes: int | None) -> None:
    """Cap the address space at what the worker holds now plus `extra_bytes`; None lifts the cap."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if extra_bytes is None:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        return
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    soft = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def describe_failure(exc: BaseException) -> dict[str, Any]:
    """Turn an exception into plain data: kind (an app.errors class name), message, field, setting.

    Example: jinja2.TemplateSyntaxError("unexpected '}'", lineno=3)
             -> {"kind": "TemplateError", "message": "Template syntax error on line 3: ...", ...}
    """
    import jinja2

    line = _template_line(exc)
    where = f" (template line {line})" if line else ""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        line = exc.lineno
    failure: dict[str, Any] = {
        "kind": "TemplateError",
        "field": "template",
        "setting": None,
        "line": line,
        "recycle": False,
    }
    if isinstance(exc, errors.MaskscopeError):
        known = where and f"line {line}" not in exc.message
        message = exc.message.rstrip(".") + where + "." if known else exc.message
        failure.update(
            kind=type(exc).__name__, message=message, field=exc.field, setting=exc.setting
        )
    elif isinstance(exc, jinja2.TemplateSyntaxError):
        failure["message"] = f"Template syntax error on line {exc.lineno}: {exc.message}"
    elif isinstance(exc, jinja2.exceptions.SecurityError):
        failure["message"] = f"The template tried an operation the sandbox forbids{where}: {exc}"
    elif isinstance(exc, jinja2.TemplateError):
        failure["message"] = f"The template raised an error{where}: {exc.message or exc}"
    elif isinstance(exc, MemoryError):
        failure.update(
            kind="LimitError",
            setting="max_worker_memory_mb",
            recycle=True,
            message="The template used more memory than allowed "
            f"(max_worker_memory_mb setting){where}.",
        )
    elif isinstance(exc, RecursionError):
        failure["message"] = f"The template recursed too deeply{where}."
    else:
        failure["message"] = f"Rendering the template failed{where}: {type(exc).__name__}: {exc}"
        log.debug("worker task failed:\n%s", "".join(traceback.format_exception(exc)))
    return failure


def _template_line(exc: BaseException) -> int | None:
    """The template line of the innermost template frame (Jinja rewrites tracebacks to show it).

    Looks through the exceptions this one was raised from too: code that turns a Jinja error
    into an app error (`raise TemplateError(...) from None`) still keeps the original context.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        line = None
        tb = current.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if (
                frame.f_code.co_filename in _TEMPLATE_FILENAMES
                or "__jinja_template__" in frame.f_globals
            ):
                line = tb.tb_lineno
            tb = tb.tb_next
        if line is not None:
            return line
        current = current.__cause__ or current.__context__
    return None


def _read_preload_env() -> list[str]:
    return [m for m in os.environ.get("MASKSCOPE_WORKER_PRELOAD", "").split(",") if m]


# -------------------------------------------------------------------------------------------------
# Server side: the pool.
# -------------------------------------------------------------------------------------------------


class _WorkerGone(Exception):
    """The worker died, sent garbage, or sent an over-long reply."""


@dataclass(eq=False)  # identity equality: workers live in a set
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection
    ready: bool = False
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, preload: list[str]) -> _Worker:
        ours, theirs = Pipe(duplex=True)
        env = dict(
            os.environ,
            MASKSCOPE_WORKER_PRELOAD=",".join(preload),
            PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "app.templating.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )  # Ctrl-C on the server's terminal is the server's business
        theirs.close()
        return cls(process, ours)

    def wait_ready(self) -> None:
        if self.ready:
            return
        left = START_TIMEOUT_S - (time.monotonic() - self.started)
        if left <= 0 or not self.conn.poll(left):
            raise _WorkerGone("the template worker did not start in time")
        self.receive(1024)
        self.ready = True

    def receive(self, max_bytes: int) -> dict[str, Any]:
        try:
            return decode_reply(self.conn.recv_bytes(max_bytes))
        except (EOFError, OSError, ValueError) as exc:
            raise _WorkerGone(f"the template worker failed ({exc})") from exc

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.conn.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


class WorkerPool:
    """A fixed number of warm workers; each task takes one, a failed one is replaced at once."""

    def __init__(self, size: int, memory_mb: int, max_reply_bytes: int) -> None:
        self.size = max(1, size)
        self.memory_bytes = memory_mb * 1024 * 1024
        self.max_reply_bytes = max_reply_bytes
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._preload: list[str] = []
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()
        self._closed = False
        self._waiting = 0
        for _ in range(self.size):
            self._spawn()

    def run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout_s: float,
    ) -> Any:
        module, name = _importable_name(fn)
        # Pickled before a worker is taken, so unpicklable arguments cost no worker.
        task = pickle.dumps((module, name, args, kwargs, self.memory_bytes, 2 * timeout_s + 5))
        self._remember(module)
        worker = self._acquire()
        try:
            reply = self._exchange(worker, task, timeout_s)
        except BaseException:
            # Timed out, died, or interrupted mid-task: its state is unknown, so it goes.
            self._discard(worker)
            raise
        failure = reply.get("error")
        if failure and failure.get("recycle"):
            self._discard(worker)
        else:
            self._idle.put(worker)
        if failure:
            raise _as_exception(failure)
        return reply.get("ok")

    def _exchange(self, worker: _Worker, task: bytes, timeout_s: float) -> dict[str, Any]:
        try:
            worker.conn.send_bytes(task)
            if not worker.conn.poll(timeout_s):
                log.warning("template worker %s timed out after %.3g s", worker.pid, timeout_s)
                raise errors.LimitError(
                    f"The template render timed out after {round(timeout_s * 1000)} ms "
                    "(render_timeout_ms setting); the worker running it was stopped.",
                    field="template",
                    setting="render_timeout_ms",
                )
            return worker.receive(self.max_reply_bytes)
        except (_WorkerGone, OSError) as exc:
            code = None
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = worker.process.wait(timeout=0.5)
            why = f"the worker process died (exit code {code})" if code is not None else str(exc)
            log.warning("template worker %s failed: %s", worker.pid, why)
            if code == -signal.SIGABRT:
                # Native code (the Rust tokenizer counting a huge rendering) aborts when an
                # allocation fails under the memory ceiling, where Python would raise MemoryError.
                raise errors.LimitError(
                    "The template's output needed more memory than allowed "
                    "(max_worker_memory_mb setting); the worker running it was stopped.",
                    field="template",
                    setting="max_worker_memory_mb",
                ) from None
            raise errors.TemplateError(
                f"Rendering the template failed: {why}.", field="template"
            ) from None

    def _acquire(self) -> _Worker:
        """A ready worker now, or after waiting off the server's thread pool (429 when too many
        wait already, or none frees up within ACQUIRE_TIMEOUT_S)."""
        worker = self._take_ready()
        if worker is not None:
            return worker
        with self._lock:
            if self._waiting >= self.size * WAITING_PER_WORKER:
                raise _busy(f"{self._waiting} requests already wait for one")
            self._waiting += 1
        try:
            with off_the_thread_pool():
                return self._wait_for_worker()
        finally:
            with self._lock:
                self._waiting -= 1

    def _take_ready(self) -> _Worker | None:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            return None
        if worker.process.poll() is None and (worker.ready or worker.conn.poll(0)):
            try:
                worker.wait_ready()  # its "ready" is already there: no wait
                return worker
            except _WorkerGone as exc:
                log.warning("template worker %s unusable: %s", worker.pid, exc)
                self._discard(worker)
                return None
        self._idle.put(worker)  # still starting (or gone): the waiting path deals with it
        return None

    def _wait_for_worker(self) -> _Worker:
        deadline = time.monotonic() + ACQUIRE_TIMEOUT_S
        while True:
            try:
                worker = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise _busy(f"none was free within {ACQUIRE_TIMEOUT_S:.0f} s") from None
            try:
                if worker.process.poll() is not None:
                    raise _WorkerGone("exited while idle")
                worker.wait_ready()
                return worker
            except _WorkerGone as exc:
                log.warning("template worker %s unusable: %s", worker.pid, exc)
                self._discard(worker)

    def _spawn(self) -> None:
        with self._lock:
            if self._closed:
                return
            worker = _Worker.start(list(self._preload))
            self._all.add(worker)
        self._idle.put(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
        self._spawn()

    def _remember(self, module: str) -> None:
        with self._lock:
            if module not in self._preload:
                self._preload.append(module)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = list(self._all), set()
        for worker in workers:
            worker.kill()


def _busy(why: str) -> errors.BusyError:
    return errors.BusyError(
        f"All template workers are busy ({why}); try again shortly (template_workers setting).",
        setting="template_workers",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


# The server's thread pool (anyio's default limiter) and the request task holding one of its
# tokens, set by the web layer for each request; None outside a request (CLI, inspection runs).
POOL_BORROWER: contextvars.ContextVar[tuple[Any, Any] | None] = contextvars.ContextVar(
    "maskscope_pool_borrower", default=None
)


@contextlib.contextmanager
def off_the_thread_pool() -> Iterator[None]:
    """While a request thread waits for a worker, its token of the server's thread pool goes
    back, so waiting requests never starve the others; it is taken again before going on.

    Example: with off_the_thread_pool(): queue.get(timeout=30)  # 200 of these hold no token
    """
    borrower = POOL_BORROWER.get()
    if borrower is None:
        yield
        return
    limiter, task = borrower
    try:
        anyio.from_thread.run_sync(limiter.release_on_behalf_of, task)
    except RuntimeError:  # not in a worker thread of that pool after all: wait holding it
        yield
        return
    try:
        yield
    finally:
        anyio.from_thread.run(limiter.acquire_on_behalf_of, task)


def _importable_name(fn: Callable[..., Any]) -> tuple[str, str]:
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "." in name or "<" in name:
        raise TypeError(f"run_in_worker needs a module-level function, got {fn!r}")
    return module, name


def _as_exception(failure: dict[str, Any]) -> errors.MaskscopeError:
    cls = getattr(errors, str(failure.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.MaskscopeError)):
        cls = errors.TemplateError
    return cls(
        str(failure.get("message", "The template failed.")),
        field=failure.get("field"),
        setting=failure.get("setting"),
    )


# -------------------------------------------------------------------------------------------------
# The module-level API.
# -------------------------------------------------------------------------------------------------

_pools: dict[tuple[int, int, int], WorkerPool] = {}
_pools_lock = threading.Lock()


def get_pool(settings: Settings) -> WorkerPool:
    """The shared pool for these settings, started on first use."""
    key = (settings.template_workers, settings.max_worker_memory_mb, settings.max_render_chars)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            # A reply holds the rendered text plus per-character data: allow generous room.
            reply_cap = 16 * settings.max_render_chars + (1 << 20)
            pool = _pools[key] = WorkerPool(key[0], key[1], reply_cap)
        return pool


def run_in_worker(
    fn: Callable[..., Any],
    *args: Any,
    settings: Settings,
    timeout_s: float | None = None,
    **kwargs: Any,
) -> Any:
    """Run `fn(*args, **kwargs)` in a warm worker process; kill it after `timeout_s`.

    Example: run_in_worker(render_untrusted, "{{ 1 + 1 }}", [], settings=s) -> whatever
             render_untrusted returns, as JSON data; a `{% for %}` bomb -> LimitError after 2 s.
    """
    limit = settings.render_timeout_ms / 1000 if timeout_s is None else timeout_s
    return get_pool(settings).run(fn, args, kwargs, limit)


def shutdown_pools() -> None:
    """Kill every worker (server shut-down; also runs at interpreter exit)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def start_workers(settings: Settings) -> WorkerPool:
    """Warm the pool before the first request (server start-up); `shutdown_pools()` stops it."""
    return get_pool(settings)


atexit.register(shutdown_pools)


if __name__ == "__main__":
    # Worker entry point: `python -m app.templating.worker <fd>`. Stray prints go to stderr so they
    # can never be mistaken for protocol data. Untrusted work yields the CPU to the server, so a
    # bomb burning its whole time limit never slows the server's answers (/healthz included).
    os.dup2(2, 1)
    os.nice(WORKER_NICENESS)
    _serve(Connection(int(sys.argv[1])))
