"""Items 34 (uploads), 35 (inspections) and 38 (inspection workers) of DESIGN §7.

A page upload that does not fit (the quota, or a disk that is really full: the upload's path is
made a link to /dev/full, whose writes fail with the kernel's ENOSPC) gets 507 naming the setting
and leaves no file; queued page runs are bounded; parallel inspections run one set of workers at
a time; and a SIGKILLed server leaves no inspection worker behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from starlette.datastructures import UploadFile

from app.inspect import parallel
from app.inspect import runs as runs_module
from app.main import create_app
from app.settings import Settings
from tests.conftest import SAME_ORIGIN, TEST_HOSTS
from tests.helpers.datasets import CHAT
from tests.helpers.errors import assert_error
from tests.helpers.security import children_of, maskscope_serve

FORM = {"v": "1", "tokenizer": "tiny_chatml", "dialect": "chatml", "train_on": "assistant"}
ROW = json.dumps({"messages": CHAT}) + "\n"


def _settings(tmp_path: Path, tiny_roots: Path, **overrides) -> Settings:
    return Settings(
        home=tmp_path / "home",
        tokenizer_roots=[tiny_roots],
        allow_hub=False,
        allowed_hosts=TEST_HOSTS,
        **overrides,
    )


def _upload(client: TestClient, rows: int):
    return client.post(
        "/inspect/runs",
        files={"file": ("d.jsonl", (ROW * rows).encode())},
        data=FORM,
    )


def _stored(settings: Settings) -> list[str]:
    folder = settings.home / "inspect"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_34_a_full_disk_on_upload_is_507_and_leaves_no_partial_file(
    tmp_path, tiny_roots, monkeypatch
):
    settings = _settings(tmp_path, tiny_roots)
    folder = settings.home / "inspect"
    runs_module.store_for(folder, settings.inspect_keep_runs)  # its start-up sweep runs now
    monkeypatch.setattr(runs_module.secrets, "token_hex", lambda n: "f" * 2 * n)
    folder.mkdir(parents=True)
    full = folder / f"{'f' * 16}.jsonl"
    full.symlink_to("/dev/full")
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        err = assert_error(_upload(client, 100), 507, "is full", str(folder))
        assert err["setting"] == "max_inspect_disk_bytes" and err["code"] == "insufficient_storage"
        assert not full.is_symlink() and _stored(settings) == []
        monkeypatch.undo()
        assert _upload(client, 3).status_code == 200


def test_34_uploads_over_the_inspect_disk_quota_get_507(tmp_path, tiny_roots):
    settings = _settings(tmp_path, tiny_roots, max_inspect_disk_bytes=len(ROW) * 10)
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        err = assert_error(_upload(client, 11), 507, "max_inspect_disk_bytes")
        assert err["setting"] == "max_inspect_disk_bytes"
        assert _stored(settings) == []
        assert _upload(client, 4).status_code == 200


def test_35_queued_page_runs_are_bounded_by_inspect_keep_runs(tmp_path, tiny_roots):
    settings = _settings(tmp_path, tiny_roots, inspect_keep_runs=2)
    store = runs_module.store_for(settings.home / "inspect", settings.inspect_keep_runs)
    gate = threading.Event()
    store.pool.submit(gate.wait, 60)  # the one inspection thread is busy: runs queue
    try:
        with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
            assert _upload(client, 2).status_code == 200
            assert _upload(client, 2).status_code == 200
            refused = _upload(client, 2)
            err = assert_error(refused, 429, "inspect_keep_runs")
            assert err["setting"] == "inspect_keep_runs" and refused.headers["retry-after"]
            assert len([n for n in _stored(settings) if n.endswith(".jsonl")]) == 2
            gate.set()
            deadline = time.monotonic() + 60
            while any(not r.done for r in store.runs.values()) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _upload(client, 2).status_code == 200
    finally:
        gate.set()


def test_35_parallel_inspections_take_turns(tmp_path):
    settings = Settings(home=tmp_path, max_running_inspections=1)
    inside, most = [0], [0]
    lock = threading.Lock()

    def one() -> None:
        with parallel.inspection_slot(settings):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.2)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=one) for _ in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1 and time.monotonic() - started >= 0.6


def _spawned_workers(pid: int) -> list[int]:
    found = []
    for child in children_of(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"spawn" in cmdline:
            found.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_38_kill_9_of_the_server_leaves_no_inspection_worker(tmp_path, tiny_roots):
    env = {
        "MASKSCOPE_HOME": str(tmp_path / "home"),
        "MASKSCOPE_TOKENIZER_ROOTS": str(tiny_roots),
        "MASKSCOPE_INSPECT_WORKERS": "2",
    }
    data = (ROW * 60_000).encode()
    with maskscope_serve(env) as (base, process):

        def inspect() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
                httpx.post(
                    f"{base}/api/inspect",
                    files={"file": ("d.jsonl", data)},
                    data={"tokenizer": "tiny_chatml", "dialect": "chatml"},
                    headers={"Origin": base},
                    timeout=300,
                )

        threading.Thread(target=inspect, daemon=True).start()
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = _spawned_workers(process.pid)
        assert len(workers) == 2, "the inspection did not start its workers"
        time.sleep(1)  # let them take chunks
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        gone_by = time.monotonic() + 5
        while any(_alive(w) for w in workers) and time.monotonic() < gone_by:
            time.sleep(0.1)
        survivors = [w for w in workers if _alive(w)]
        for pid in survivors:  # never leave them behind, whatever the assertion says
            os.kill(pid, signal.SIGKILL)
        assert not survivors, "inspection workers outlived the server"


def test_36_a_drill_down_into_a_line_the_run_refused_reads_no_more_of_it(tmp_path, tiny_roots):
    settings = _settings(tmp_path, tiny_roots, max_line_bytes=1_000)
    long_row = json.dumps({"messages": [{"role": "user", "content": "x" * 50_000}, CHAT[1]]})
    data = (ROW + long_row + "\n" + ROW).encode()
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        started = client.post("/inspect/runs", files={"file": ("d.jsonl", data)}, data=FORM)
        assert started.status_code == 200, started.text
        store = runs_module.store_for(settings.home / "inspect", settings.inspect_keep_runs)
        (run,) = store.runs.values()
        deadline = time.monotonic() + 60
        while not run.done and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run.status == "done", run.error
        drill = client.get(f"/inspect/runs/{run.id}/rows/2", headers={"HX-Request": "true"})
        assert drill.status_code == 422, drill.text
        assert "longer than 1000 bytes" in drill.text and "max_line_bytes" in drill.text
        assert (
            client.get(f"/inspect/runs/{run.id}/rows/3", headers={"HX-Request": "true"}).status_code
            == 200
        )


def test_34_a_full_disk_while_an_upload_is_spooled_is_507_not_500(
    tmp_path, tiny_roots, monkeypatch
):
    settings = _settings(tmp_path, tiny_roots)
    real_write = UploadFile.write

    async def fills_the_disk(self, data: bytes) -> None:
        if self.file.tell() + len(data) > 512 * 1024:  # where the spool goes to disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        await real_write(self, data)

    monkeypatch.setattr(UploadFile, "write", fills_the_disk)
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        err = assert_error(_upload(client, 20_000), 507, "is full", "TMPDIR")
        assert err["setting"] == "max_upload_bytes" and err["code"] == "insufficient_storage"
        assert _stored(settings) == []
        api = client.post(
            "/api/inspect",
            files={"file": ("d.jsonl", (ROW * 20_000).encode())},
            data={"tokenizer": "tiny_chatml", "dialect": "chatml"},
        )
        assert 400 <= api.status_code < 500, api.text  # FastAPI's "error parsing the body"
        monkeypatch.undo()
        assert _upload(client, 3).status_code == 200
