"""Fine-tune jobs in one SQLite file: specs, status, progress, metrics, samples, artifacts.

Every call opens its own short connection (WAL mode), so the web workers, the runner task and a
restart all see one consistent state. Submissions run in an IMMEDIATE transaction: the
idempotency-key lookup, the queue bound and the insert cannot interleave with another submission.

Design concession: metrics are rows and everything else small is JSON in the job row; that is
plenty for a job list of hundreds and curves of thousands of points.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import BusyError, ConflictError, InputError, NotFoundError
from app.train.record import ACTIVE, FINISHED, Job
from app.train.spec import JobSpec

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  spec TEXT NOT NULL,
  idempotency_key TEXT UNIQUE,
  body_hash TEXT,
  step INTEGER NOT NULL DEFAULT 0,
  total_steps INTEGER NOT NULL,
  samples TEXT NOT NULL DEFAULT '[]',
  artifacts TEXT NOT NULL DEFAULT '[]',
  info TEXT NOT NULL DEFAULT '{}',
  error TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  started_at REAL,
  finished_at REAL
);
CREATE TABLE IF NOT EXISTS metrics (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs(id),
  arm TEXT NOT NULL,
  step INTEGER NOT NULL,
  loss REAL,
  lr REAL,
  tokens_per_s REAL,
  extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS metrics_job ON metrics(job_id, seq);
"""


def body_hash(spec: dict[str, Any]) -> str:
    """Canonical hash of a submitted spec. Example: key order does not matter."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


# Long: one class per table set, every query beside the others, so the schema is read in one
# place; each method is a few lines of SQL.
class JobStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked or unopenable: not damage
                raise
            # A truncated or overwritten file: keep it for a post-mortem and start afresh.
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    path.with_name(path.name + suffix).rename(aside.with_name(aside.name + suffix))
            log.warning("job database %s was damaged (%s); moved to %s", path, exc, aside)
            self._open()

    def _open(self) -> None:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            problem = db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {problem}")
        finally:
            db.close()

    @contextlib.contextmanager
    def _connect(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def create(self, spec: JobSpec, *, key: str | None, max_active: int) -> tuple[Job, bool]:
        """Queue a job; the same idempotency key with the same body returns the first job."""
        body = spec.model_dump(mode="json")
        digest = body_hash(body)
        with self._connect(immediate=True) as db:
            if key is not None:
                row = db.execute("SELECT * FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
                if row is not None:
                    if row["body_hash"] != digest:
                        raise InputError(
                            "This Idempotency-Key was already used with a different "
                            "job spec; use a new key for a new job.",
                            field="Idempotency-Key",
                        )
                    return self._job(db, row), False
            active = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", ACTIVE
            ).fetchone()[0]
            if active >= max_active:
                raise BusyError(
                    f"{active} jobs are already queued or running; the queue is "
                    "limited by the max_queued_jobs setting. Retry later.",
                    setting="max_queued_jobs",
                    headers={"Retry-After": "30"},
                )
            job_id = uuid.uuid4().hex[:12]
            db.execute(
                "INSERT INTO jobs (id, status, spec, idempotency_key, body_hash, "
                "total_steps, created_at) VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, json.dumps(body), key, digest, spec.total_steps, time.time()),
            )
            return self._job(db, self._row(db, job_id)), True

    def get(self, job_id: str, *, metrics: bool = True) -> Job:
        with self._connect() as db:
            return self._job(db, self._row(db, job_id), metrics=metrics)

    def poll(self, job_id: str, after: int) -> tuple[list[dict[str, Any]], Job]:
        """Metrics after seq ``after`` and the job row (without metrics), from one snapshot.

        One connection per poll for a live stream; a finished status seen here comes with every
        metric recorded before it. Example: poll(id, 3) -> ([{"seq": 4, ...}], Job(status=...))
        """
        with self._connect() as db:
            job = self._job(db, self._row(db, job_id), metrics=False)
            return self._metrics(db, job_id, after), job

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a cancel was asked for: one primary-key read, cheap enough to poll."""
        with self._connect() as db:
            return bool(self._row(db, job_id, "cancel_requested")["cancel_requested"])

    def list(self, limit: int = 100) -> list[Job]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
            return [self._job(db, row, metrics=False) for row in rows.fetchall()]

    def claim_next(self) -> Job | None:
        """Oldest queued job, now marked running (one job at a time)."""
        with self._connect(immediate=True) as db:
            if db.execute("SELECT 1 FROM jobs WHERE status = 'running'").fetchone():
                return None
            row = db.execute(
                "SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?",
                (time.time(), row["id"]),
            )
            return self._job(db, self._row(db, row["id"]), metrics=False)

    def cancel(self, job_id: str) -> Job:
        """Queued: cancelled at once. Running: flagged, stops at its next step. Finished: 409."""
        with self._connect(immediate=True) as db:
            row = self._row(db, job_id)
            if row["status"] in FINISHED:
                raise ConflictError(
                    f"Job {job_id} is already {row['status']}; only queued or "
                    "running jobs can be cancelled."
                )
            if row["status"] == "queued":
                db.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?",
                    (time.time(), job_id),
                )
            else:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            return self._job(db, self._row(db, job_id), metrics=False)

    def check_deletable(self, job_id: str) -> None:
        """NotFoundError for an unknown job, ConflictError for a queued or running one."""
        with self._connect() as db:
            status = self._row(db, job_id, "status")["status"]
        if status not in FINISHED:
            raise ConflictError(
                f"Job {job_id} is {status}; only finished jobs can be deleted: cancel it first."
            )

    def delete(self, job_id: str) -> None:
        """Remove a finished job's row and metrics (an active job is left alone)."""
        with self._connect(immediate=True) as db:
            row = self._row(db, job_id, "status")
            if row["status"] in FINISHED:
                db.execute("DELETE FROM metrics WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def finished_before(self, cutoff: float) -> builtins.list[str]:
        """Ids of jobs that finished before the time `cutoff` (seconds since the epoch)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE status IN (?, ?, ?) AND finished_at < ?",
                (*FINISHED, cutoff),
            )
            return [r["id"] for r in rows]

    def finish(self, job_id: str, status: str, error: str | None = None) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? "
                "AND status = 'running'",
                (status, error, time.time(), job_id),
            )

    def running_ids(self) -> builtins.list[str]:
        with self._connect() as db:
            return [r["id"] for r in db.execute("SELECT id FROM jobs WHERE status = 'running'")]

    def recover(self) -> builtins.list[str]:
        """After a restart: a job left running was interrupted; everything else stays as it was."""
        with self._connect(immediate=True) as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs WHERE status = 'running'")]
            db.execute(
                "UPDATE jobs SET status = 'failed', error = 'interrupted', finished_at = ? "
                "WHERE status = 'running'",
                (time.time(),),
            )
            return ids

    def update(self, job_id: str, **fields: Any) -> None:
        """Set progress / samples / artifacts / info (JSON-encoded where needed)."""
        allowed = {"step", "total_steps", "samples", "artifacts", "info"}
        if not set(fields) <= allowed:
            raise ValueError(f"unknown job fields {set(fields) - allowed}")
        values = [
            json.dumps(v) if k in ("samples", "artifacts", "info") else v for k, v in fields.items()
        ]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._connect() as db:
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values, job_id))

    def add_metric(self, job_id: str, metric: dict[str, Any]) -> None:
        core = ("arm", "step", "loss", "lr", "tokens_per_s")
        extra = {k: v for k, v in metric.items() if k not in (*core, "type", "time")}
        with self._connect() as db:
            db.execute(
                "INSERT INTO metrics (job_id, arm, step, loss, lr, tokens_per_s, extra) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, *(metric.get(k) for k in core), json.dumps(extra)),
            )

    def metrics(self, job_id: str, after: int = 0) -> builtins.list[dict[str, Any]]:
        with self._connect() as db:
            return self._metrics(db, job_id, after)

    @staticmethod
    def _metrics(
        db: sqlite3.Connection, job_id: str, after: int = 0
    ) -> builtins.list[dict[str, Any]]:
        rows = db.execute(
            "SELECT * FROM metrics WHERE job_id = ? AND seq > ? ORDER BY seq", (job_id, after)
        )
        return [
            {
                "seq": r["seq"],
                "arm": r["arm"],
                "step": r["step"],
                "loss": r["loss"],
                "lr": r["lr"],
                "tokens_per_s": r["tokens_per_s"],
                **json.loads(r["extra"]),
            }
            for r in rows
        ]

    @staticmethod
    def _row(db: sqlite3.Connection, job_id: str, columns: str = "*") -> sqlite3.Row:
        row = db.execute(f"SELECT {columns} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"No job with id {job_id!r}.", field="id")
        found: sqlite3.Row = row
        return found

    def _job(self, db: sqlite3.Connection, row: sqlite3.Row, *, metrics: bool = True) -> Job:
        return Job(
            id=row["id"],
            status=row["status"],
            spec=json.loads(row["spec"]),
            step=row["step"],
            total_steps=row["total_steps"],
            samples=json.loads(row["samples"]),
            error=row["error"],
            artifacts=json.loads(row["artifacts"]),
            info=json.loads(row["info"]),
            cancel_requested=bool(row["cancel_requested"]),
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            metrics=self._metrics(db, row["id"]) if metrics else None,
        )
