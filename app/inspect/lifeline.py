"""A parallel inspection worker's tie to the server that started it.

A worker of a ProcessPoolExecutor waits on a task queue whose pipe its siblings also hold open,
so a server killed with SIGKILL would leave it waiting for good. The worker's initializer lives
here, in a module that imports nothing heavy: the watch starts before the worker spends seconds
importing the tokenizer stack, and ends the worker within PARENT_CHECK_S once the server is gone.

Example: ProcessPoolExecutor(2, initializer=start, initargs=(Job(settings, spec, os.getpid()),))

Design concession: the watch polls the parent's pid twice a second (a parent-death signal would
be instant, but Linux ties it to the thread that started the worker, not to the server).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from app.chat.spec import RenderSpec
from app.settings import Settings

PARENT_CHECK_S = 0.5


@dataclass(frozen=True)
class Job:
    """What a worker needs to load the inspection options again: all plain data."""

    settings: Settings
    spec: RenderSpec
    server_pid: int  # the process that started the worker: it ends once that one is gone


_job: Job | None = None


def start(job: Job) -> None:
    """The worker's initializer: keep `job` for the first chunk and watch the server."""
    global _job
    _job = job
    # Rows are already spread over processes: a per-row thread pool would only oversubscribe.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    threading.Thread(target=_watch, args=(job.server_pid,), name="lifeline", daemon=True).start()


def current_job() -> Job:
    assert _job is not None, "lifeline.start runs first in every worker"
    return _job


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)
