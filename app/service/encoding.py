"""Answers as compact UTF-8 JSON bytes, written by orjson: several times faster than the standard
library for the long per-token lists of a rendering, with the same names and values.

Example: encode_json({"text": "café", "ids": [1, 2]}) -> b'{"text":"caf\\xc3\\xa9","ids":[1,2]}'

Design concession: orjson refuses strings holding lone surrogates, which the standard encoder
writes as escapes; such an answer (none should exist: request bodies with them are refused) falls
back to the standard encoder rather than failing. Non-finite floats become null, where the
standard encoder would write NaN, which is no JSON.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def encode_json(content: Any) -> bytes:
    """`content` as compact UTF-8 JSON; the standard encoder where orjson cannot write it."""
    try:
        return orjson.dumps(content)
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, a key that is not a str...
        return json.dumps(content, separators=(",", ":"), default=str).encode()
