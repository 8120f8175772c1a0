"""Finding and ending a job's processes, so no test leaves a fine-tune running behind it.

A job's process group is not enough: torchrun starts each rank in a session of its own, so the
processes are found by their command line, which names the job's spec.json.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def job_processes(folder: Path) -> list[int]:
    """Pids of the live processes running a job under folder (zombies have no command line)."""
    needle = os.fsencode(folder)
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


def end_job_processes(folder: Path) -> None:
    for pid in job_processes(folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_for_no_job_processes(folder: Path, timeout: float) -> None:
    """Fails when a job process under folder still runs after timeout seconds."""
    deadline = time.monotonic() + timeout
    while pids := job_processes(folder):
        assert time.monotonic() < deadline, f"job processes {pids} still run"
        time.sleep(0.1)
