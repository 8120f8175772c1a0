"""The streaming reader: line numbers, offsets, bad lines, limits."""

from __future__ import annotations

import io

import pytest

from app.errors import LimitError
from app.inspect.reader import JsonlReader, read_line


def rows(data: bytes, **kw):
    kw.setdefault("max_rows", 100)
    kw.setdefault("max_line_bytes", 1000)
    return list(JsonlReader(io.BytesIO(data), **kw))


def test_line_numbers_offsets_and_blank_lines():
    data = b'{"a": 1}\n\n  \n{"b": 2}\n'
    got = rows(data)
    assert [(r.line, r.offset, r.row) for r in got] == [(1, 0, {"a": 1}), (4, 13, {"b": 2})]
    assert data[13:].startswith(b'{"b"')


def test_bad_lines_do_not_stop_the_rest():
    got = rows(b'nope\n[1]\n"s"\n\xff\xfe\n{"ok": true}')
    assert [r.error is not None for r in got] == [True, True, True, True, False]
    assert got[0].error.startswith("line 1: not valid JSON")
    assert "got list" in got[1].error
    assert got[-1].row == {"ok": True}


def test_overlong_line_is_skipped_whole():
    got = rows(b'{"a": "' + b"x" * 50 + b'"}\n{"b": 1}\n', max_line_bytes=20)
    assert "max_line_bytes" in got[0].error
    assert (got[1].line, got[1].row) == (2, {"b": 1})


def test_row_limit_names_the_setting():
    with pytest.raises(LimitError) as info:
        rows(b'{"a": 1}\n' * 3, max_rows=2)
    assert info.value.setting == "max_upload_rows"


def test_progress_counts_bytes():
    data = b'{"a": 1}\n{"a": 2}\n'
    reader = JsonlReader(io.BytesIO(data), max_rows=10, max_line_bytes=100)
    list(reader)
    assert (reader.bytes_read, reader.rows) == (len(data), 2)


def test_read_line_by_number_and_offset():
    data = io.BytesIO(b'{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    assert read_line(data, 2).row == {"a": 2}
    assert read_line(data, 3, offset=18).row == {"a": 3}
