"""A fine-tune job as the store records it: typed fields, and `to_json()` for the API.

The store builds a `Job` from its row; the runner, the API, the pages and the job templates read
its attributes; only `to_json()` makes the JSON shape, so every surface shows the same job.

Example: Job(id="ab12", status="queued", step=0, total_steps=30, ...).to_json()
         -> {"id": "ab12", "status": "queued", "spec": {...},
             "progress": {"step": 0, "total_steps": 30, "phase": None, "arms": [...]}, ...}

Design concession: `spec` is the body as it was submitted (JobSpec dumped to JSON), kept as data
rather than re-validated into a JobSpec on every read, so a job stored by an older version still
lists; metrics and samples are open records too (a metric carries whatever extras the loop sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from app.train.summary import arm_progress, summarize

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")
FINISHED: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Job:
    """One job. `metrics` is None when the job was read without them (lists, polls)."""

    id: str
    status: JobStatus
    spec: dict[str, Any]
    step: int
    total_steps: int
    samples: list[dict[str, Any]]
    error: str | None
    artifacts: list[str]
    info: dict[str, Any]
    cancel_requested: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    metrics: list[dict[str, Any]] | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def progress(self) -> dict[str, int]:
        """Example: {"step": 4, "total_steps": 30}"""
        return {"step": self.step, "total_steps": self.total_steps}

    def to_json(self) -> dict[str, Any]:
        """The job as the API sends it (key order included); `metrics` only when read."""
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "spec": self.spec,
            "progress": {
                **self.progress,
                "phase": self.info.get("phase"),
                "arms": arm_progress(self.spec, self.step),
            },
            "samples": self.samples,
            "error": self.error,
            "artifacts": self.artifacts,
            "info": self.info,
            "cancel_requested": self.cancel_requested,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.metrics is not None:
            body["metrics"] = self.metrics
            body["summary"] = summarize(self.spec, self.metrics, self.samples)
        return body
