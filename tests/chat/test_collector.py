"""collector: the garbage collector paused while rendering, old objects frozen while inspecting
or, in the server, from start-up on."""

import gc
import io
import json

import pytest
from fastapi.testclient import TestClient

from app.chat.collector import collector_paused, old_objects_frozen
from app.main import create_app
from app.service.inspect import inspect_stream, prepare
from tests.conftest import SAME_ORIGIN


@pytest.fixture
def unfrozen():
    """A process that froze nothing yet (as the CLI's); the freeze is put back afterwards."""
    was = gc.get_freeze_count()
    gc.unfreeze()
    yield
    if was:
        gc.freeze()


def test_the_collector_is_paused_inside_and_restored_after():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_objects_alive_before_are_frozen_and_freed_of_it_after(unfrozen):
    with old_objects_frozen():
        assert gc.get_freeze_count() > 0
        made_inside = [object()]
        assert gc.is_tracked(made_inside)
    assert gc.get_freeze_count() == 0


def test_an_inspection_leaves_the_freeze_as_it_found_it(settings, unfrozen):
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows * 3).encode()
    options = prepare(settings, tokenizer="smollm2", dialect="tokenizer")
    assert inspect_stream(io.BytesIO(data), options).summary.rows == 3
    assert gc.get_freeze_count() == 0
    gc.freeze()
    assert inspect_stream(io.BytesIO(data), options).summary.rows == 3
    assert gc.get_freeze_count() > 0  # a process frozen on its own stays so (never unfrozen)


def test_the_server_freezes_what_start_up_left(settings):
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 0
