"""Resolve a local tokenizer folder strictly inside the allowed roots (setting tokenizer_roots).

Everything is decided from the path strings, `lstat` and `realpath` before any file is opened: NUL
bytes, `..` components, absolute paths outside the roots, and symlinks anywhere in the folder's
tree (transformers reads subfolders such as `additional_chat_templates/`) that lead outside the
roots or to something that is not a regular file or folder (a FIFO or device would hang or leak a
read) are refused. The walk visits at most MAX_FOLDER_ENTRIES entries and never follows a link.

Design concession: a symlink that stays inside a root is allowed, so a Hugging Face cache under a
root still loads (its `snapshots/<rev>/` files link to `../../blobs/`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from app.errors import InputError

_FIELD = "tokenizer"
# A tokenizer or model folder holds a handful of files; a tree this large is refused unread.
MAX_FOLDER_ENTRIES = 10_000


def looks_like_path(ref: str) -> bool:
    """Absolute, home-relative or explicitly relative references are paths, never Hub ids."""
    return ref.startswith(("/", "~", "./", "../", "\\")) or ref in {".", ".."} or "\\" in ref


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _refusal(message: str) -> InputError:
    return InputError(message, field=_FIELD, setting="tokenizer_roots")


def _check_link(entry: os.DirEntry[str], folder: str, root: str) -> str | None:
    """The real folder a link leads to (to be walked too), None for a file; refuses escapes."""
    target = os.path.realpath(entry.path)
    name = os.path.relpath(entry.path, folder)
    if not _inside(target, root):
        raise _refusal(
            f"{name} in the tokenizer folder links outside the allowed roots "
            "(setting tokenizer_roots)"
        )
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return None  # dangling: nothing to read, transformers will report the missing file
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise _refusal(f"{name} in the tokenizer folder links to a special file")
    return target if stat.S_ISDIR(mode) else None


def _refuse_escaping_entries(folder: str, root: str) -> None:
    """Walk `folder`, and every folder a link in it leads to, refusing links that leave `root`.

    Each real folder is walked once, so link cycles end.
    Example: _refuse_escaping_entries("/r/tok", "/r") -> None, or InputError for a link to /etc.
    """
    pending, walked, seen = [folder], {folder}, 0
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_FOLDER_ENTRIES:
                    raise _refusal(
                        f"the tokenizer folder holds more than {MAX_FOLDER_ENTRIES:,} entries"
                    )
                if entry.is_symlink():
                    target = _check_link(entry, folder, root)
                    if target is not None and target not in walked:
                        walked.add(target)
                        pending.append(target)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif not entry.is_file(follow_symlinks=False):
                    raise _refusal(
                        f"{os.path.relpath(entry.path, folder)} in the tokenizer folder is a "
                        "special file"
                    )


def _check_syntax(ref: str) -> None:
    if "\x00" in ref:
        raise InputError("tokenizer path contains a NUL byte", field=_FIELD)
    if ".." in Path(ref.replace("\\", "/")).parts:
        raise InputError("tokenizer path may not contain '..'", field=_FIELD)


def resolve_local(ref: str, roots: list[Path], *, must_exist: bool = True) -> Path | None:
    """The real folder for `ref` under one of `roots`, or None when it is not there.

    Example: resolve_local("mytok", [Path("/data/tok")]) -> Path("/data/tok/mytok")
    Raises InputError for anything that would leave the roots.
    """
    _check_syntax(ref)
    expanded = os.path.expanduser(ref)
    real_roots = [os.path.realpath(r) for r in roots]
    if not real_roots:
        if must_exist:
            raise InputError(
                "local tokenizer folders are disabled: no tokenizer_roots are configured",
                field=_FIELD,
                setting="tokenizer_roots",
            )
        return None
    if os.path.isabs(expanded):
        candidates = [expanded]
    else:
        candidates = [os.path.join(root, expanded) for root in real_roots]
    for candidate in candidates:
        real = os.path.realpath(candidate)
        root = next((r for r in real_roots if _inside(real, r)), None)
        if root is None:
            raise InputError(
                f"{ref} is outside the allowed roots (setting tokenizer_roots)",
                field=_FIELD,
                setting="tokenizer_roots",
            )
        if os.path.isdir(real):
            _refuse_escaping_entries(real, root)
            return Path(real)
    if must_exist:
        raise InputError(
            f"no tokenizer folder {ref} under the allowed roots",
            field=_FIELD,
            setting="tokenizer_roots",
        )
    return None
