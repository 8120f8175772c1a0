"""Open job event streams (SSE), counted against caps in all and per job.

An open stream costs the server a database poll every half second for as long as it lasts, so
the number a client can hold open is bounded; one over a cap gets 429 with Retry-After.

Design concession: the counts live in this process only, which is all there is (one server
process holds the job queue).
Example: slots.claim("ab12") -> release; with 10 open on "ab12" -> BusyError (429)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from app.errors import BusyError
from app.settings import Settings


class StreamSlots:
    """Counts open event streams, in all and per job, and refuses one over either cap (429).

    Example: slots.claim("ab12") -> release (call it once the stream ends; calling it again is a
    no-op); the 11th stream on "ab12" with the default caps -> BusyError naming the setting.
    """

    def __init__(self, settings: Settings) -> None:
        self.total_cap = settings.max_event_streams
        self.per_job_cap = settings.max_event_streams_per_job
        self.open: dict[str, int] = {}
        self.lock = threading.Lock()

    def claim(self, job_id: str) -> Callable[[], None]:
        with self.lock:
            if sum(self.open.values()) >= self.total_cap:
                raise self._busy("max_event_streams", f"{self.total_cap} event streams are")
            if self.open.get(job_id, 0) >= self.per_job_cap:
                raise self._busy(
                    "max_event_streams_per_job", f"{self.per_job_cap} event streams on this job are"
                )
            self.open[job_id] = self.open.get(job_id, 0) + 1
        released = threading.Event()

        def release() -> None:
            with self.lock:
                if released.is_set():
                    return
                released.set()
                self.open[job_id] -= 1
                if not self.open[job_id]:
                    del self.open[job_id]

        return release

    @staticmethod
    def _busy(setting: str, what: str) -> BusyError:
        return BusyError(
            f"{what} already open ({setting} setting); close one, or poll GET /api/jobs/{{id}}.",
            setting=setting,
            headers={"Retry-After": "5"},
        )
