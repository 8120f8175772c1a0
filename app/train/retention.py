"""Job artifacts on disk: delete a finished job, prune old ones, refuse new ones over the quota.

A job's files live in ``jobs_dir/<id>/`` (spec, log, events, the saved model). Deleting a job
removes that folder first and then its row, so a folder that could not be removed keeps its row
and the delete can be retried. The quota is checked when a job is submitted: a job that would
start over it is refused with 507 naming the setting, before anything is written.

Example: prune_jobs(store, Settings(job_retention_days=30)) -> ["3f2a9c1b0d4e"] (finished 31
days ago: folder and row gone)

Design concession: the quota is checked against the folder's size at submit time, not reserved
per job; a job that starts under the quota may end over it, and the next submission is refused.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

from app.errors import StorageError
from app.settings import Settings
from app.train.store import JobStore

DAY_S = 86_400.0


def delete_job(store: JobStore, settings: Settings, job_id: str) -> None:
    """Remove a finished job's folder and row: 404 unknown, 409 queued or running."""
    store.check_deletable(job_id)
    folder = settings.jobs_dir / job_id
    if folder.exists():  # a job cancelled while queued never had one
        shutil.rmtree(folder)
    store.delete(job_id)


def prune_jobs(store: JobStore, settings: Settings, now: float | None = None) -> list[str]:
    """Delete jobs finished more than job_retention_days ago (0 keeps every job)."""
    if settings.job_retention_days <= 0:
        return []
    cutoff = (time.time() if now is None else now) - settings.job_retention_days * DAY_S
    ids = store.finished_before(cutoff)
    for job_id in ids:
        delete_job(store, settings, job_id)
    return ids


def folder_bytes(folder: Path) -> int:
    """Total size of the files under folder (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def check_quota(settings: Settings) -> None:
    """Refuse a new job while the artifacts folder is over max_job_artifacts_bytes."""
    used = folder_bytes(settings.jobs_dir)
    if used > settings.max_job_artifacts_bytes:
        raise StorageError(
            f"Job artifacts take {used} bytes, over the max_job_artifacts_bytes setting "
            f"({settings.max_job_artifacts_bytes}); delete finished jobs "
            "(DELETE /api/jobs/{id}) or raise the setting.",
            setting="max_job_artifacts_bytes",
        )


def failure_message(exc: BaseException, job_dir: Path) -> str:
    """A job's error text; a full disk names the disk. Example: ENOSPC -> "The disk holding …"""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (
            f"The disk holding {job_dir} is full ({exc.strerror}); free space there, delete "
            "finished jobs, or lower the job_retention_days / max_job_artifacts_bytes settings."
        )
    return f"{type(exc).__name__}: {exc}"
