"""Module-level functions that the worker tests send to real worker processes."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from app.errors import InputError
from app.templating.limits import LimitedSandboxedEnvironment, render_limited


def render_source(
    source: str, context: dict[str, Any], max_range: int = 1000, max_chars: int = 100_000
) -> str:
    """A minimal untrusted render, the way the engine does it, with transformers' globals."""
    import jinja2

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = LimitedSandboxedEnvironment(
        max_range=max_range, max_output_chars=max_chars, trim_blocks=True, lstrip_blocks=True
    )
    env.globals["raise_exception"] = raise_exception
    return render_limited(env.from_string(source), max_chars, context)


def pid() -> int:
    return os.getpid()


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


def refuse(field: str) -> None:
    raise InputError(f"{field} is wrong", field=field)


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))


def unserialisable() -> object:
    return object()


def die() -> None:
    os._exit(3)


def collector_state() -> dict[str, Any]:
    """Whether the cyclic collector runs during a task, and how much it froze at start-up."""
    return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
