"""Resolve a local tokenizer folder strictly inside the allowed roots (setting tokenizer_roots).

Everything is decided from the path strings and `realpath` before any file is opened: NUL bytes,
`..` components, absolute paths outside the roots and symlinks (the folder or a file in it) that
lead outside are refused. Design concession: a symlink that stays inside a root is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.errors import InputError

_FIELD = "tokenizer"


def looks_like_path(ref: str) -> bool:
    """Absolute, home-relative or explicitly relative references are paths, never Hub ids."""
    return ref.startswith(("/", "~", "./", "../", "\\")) or ref in {".", ".."} or "\\" in ref


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _refuse_escaping_entries(folder: str, root: str) -> None:
    for entry in os.scandir(folder):
        if entry.is_symlink() and not _inside(os.path.realpath(entry.path), root):
            raise InputError(
                f"{entry.name} in the tokenizer folder links outside the allowed "
                "roots (setting tokenizer_roots)",
                field=_FIELD,
                setting="tokenizer_roots",
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
