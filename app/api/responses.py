"""The API's JSON answers, encoded by orjson (`app.service.encoding.encode_json`): several times
faster than the standard library for the long per-token lists of a rendering, with the same
names and values.

Routes that return a large answer build it as plain data and return `FastJSON(data)` themselves,
so FastAPI does not walk the whole answer through `jsonable_encoder` first; an answer already
written as JSON bytes goes out as `EncodedJSON(body)`.

Example: FastJSON({"text": "café", "ids": [1, 2]}).body -> b'{"text":"caf\\xc3\\xa9","ids":[1,2]}'

Non-finite floats become null, where the standard response would fail with a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

from app.service.encoding import encode_json


class FastJSON(JSONResponse):
    """A JSONResponse whose body orjson writes (FastAPI's `response_class` for the API)."""

    def render(self, content: Any) -> bytes:
        return encode_json(content)


class EncodedJSON(Response):
    """An answer already written as JSON bytes (the same headers as FastJSON's)."""

    media_type = "application/json"
