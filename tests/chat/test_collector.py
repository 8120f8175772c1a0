"""collector: the garbage collector paused while rendering, old objects frozen while inspecting."""

import gc
import io
import json

from app.chat.collector import collector_paused, old_objects_frozen
from app.service.inspect import inspect_stream, prepare


def test_the_collector_is_paused_inside_and_restored_after():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_objects_alive_before_are_frozen_and_freed_of_it_after():
    before = gc.get_freeze_count()
    with old_objects_frozen():
        assert gc.get_freeze_count() > before
        made_inside = [object()]
        assert gc.is_tracked(made_inside)
    assert gc.get_freeze_count() == 0


def test_an_inspection_leaves_no_object_frozen(settings):
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows * 3).encode()
    options = prepare(settings, tokenizer="smollm2", dialect="tokenizer")
    report = inspect_stream(io.BytesIO(data), options)
    assert report.summary.rows == 3
    assert gc.get_freeze_count() == 0
