"""The rebuilt Llama 2 tokenizer against the package's vectors and its JavaScript implementation."""

import json
import shutil
import subprocess
import tarfile

import pytest

from app.assets.archives import ArchiveError
from app.assets.llama2 import (
    JS_MEMBER,
    build_llama2,
    build_tokenizer,
    failing_vectors,
    parse_vectors,
    parse_vocab_and_merges,
)
from app.tokenizers.registry import load_tokenizer

# Written out here, independently of the parser, from llama-tokenizer-js's README and tests.
KNOWN = [
    ("grabbed", [1, 2646, 1327, 287]),
    (" grabbed", [1, 29871, 2646, 1327, 287]),
    ("\n", [1, 29871, 13]),
    (" \n", [1, 259, 13]),
    ("Hello world", [1, 15043, 3186]),
    ("🦙", [1, 29871, 243, 162, 169, 156]),
]


@pytest.fixture(scope="module")
def js_source(llama_js_package) -> str:
    return (llama_js_package / "llama-tokenizer.js").read_text(encoding="utf-8")


@pytest.mark.parametrize(("text", "ids"), KNOWN)
def test_known_ids(text, ids, settings):
    assert load_tokenizer("llama2", settings)(text)["input_ids"] == ids


def test_every_package_vector_passes(js_source, settings):
    vectors = parse_vectors(js_source)
    assert len(vectors) == 12
    assert ("grabbed", [1, 2646, 1327, 287]) in vectors
    assert failing_vectors(load_tokenizer("llama2", settings), vectors) == []


def test_special_tokens(settings):
    tok = load_tokenizer("llama2", settings)
    assert (tok.bos_token, tok.bos_token_id) == ("<s>", 1)
    assert (tok.eos_token, tok.eos_token_id) == ("</s>", 2)
    assert tok.convert_ids_to_tokens([0, 13, 29871]) == ["<unk>", "<0x0A>", "▁"]
    assert len(tok) == 32000


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to run the JS reference")
def test_matches_the_javascript_reference_implementation(llama_js_package, settings):
    texts = [
        "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there! [/INST] Hello. ",
        "def f(x):\n\treturn x**2  # ünïcödé 日本語 🦙🦙",
        "  two  spaces   three",
        "1234567890 3.14159 e=mc²",
        "Ünicode ligatures ﬁ and combining é",
    ]
    script = (
        "import t from './llama-tokenizer.js';"
        "const texts = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(texts.map(s => t.encode(s))))"
    )
    result = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(texts)],
        cwd=llama_js_package,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    expected = json.loads(result.stdout)
    tok = load_tokenizer("llama2", settings)
    assert [tok(t)["input_ids"] for t in texts] == expected


def test_broken_merges_fail_the_vectors(js_source):
    vocab, merges = parse_vocab_and_merges(js_source)
    from transformers import PreTrainedTokenizerFast

    broken = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(vocab, merges[500:]))
    assert failing_vectors(broken, parse_vectors(js_source))


def test_a_failing_vector_refuses_the_build(js_source, tmp_path):
    doctored = js_source.replace(
        'testCase("grabbed",                           [1, 2646,',
        'testCase("grabbed",                           [1, 2647,',
    )
    assert doctored != js_source
    package = tmp_path / "package"
    package.mkdir()
    (package / "llama-tokenizer.js").write_text(doctored, encoding="utf-8")
    archive = tmp_path / "doctored.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(package / "llama-tokenizer.js", arcname=JS_MEMBER)
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    with pytest.raises(ArchiveError, match=r"fails 1 of 12 test vectors.*not installed"):
        build_llama2(archive, out, work)
