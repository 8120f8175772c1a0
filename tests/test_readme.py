"""The README stays honest: every setting is documented with its variable, default and help.

Regenerate the table after adding a setting:  .venv/bin/python tests/test_readme.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def _default(value: object) -> str:
    if isinstance(value, Path):
        home = Path.home()
        return f"`~/{value.relative_to(home)}`" if value.is_relative_to(home) else f"`{value}`"
    if isinstance(value, list):
        # Names are comma-separated in the environment, paths os.pathsep-separated.
        sep = "," if all(isinstance(v, str) for v in value) else os.pathsep
        return "(none)" if not value else f"`{sep.join(map(str, value))}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    # Thousands separators only where they help: 65_536, but port 8000.
    return f"`{value:_}`" if isinstance(value, int) and value >= 10_000 else f"`{value}`"


def settings_table() -> str:
    """The markdown table of every setting, from app.settings.describe()."""
    sys.path.insert(0, str(README.parent))
    from app.settings import describe

    rows = ["| Setting | Environment variable | Default | What it does |", "|---|---|---|---|"]
    for name, default, help_text in describe():
        help_text = help_text.replace("|", "\\|")
        variable = f"MASKSCOPE_{name.upper()}"
        rows.append(f"| `{name}` | `{variable}` | {_default(default)} | {help_text} |")
    return "\n".join(rows)


def _documented_table() -> str:
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, f"README.md lacks the {START} ... {END} block"
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def test_every_setting_is_in_the_readme():
    from app.settings import describe

    documented = _documented_table()
    missing = [
        name
        for name, _, _ in describe()
        if f"`{name}`" not in documented or f"MASKSCOPE_{name.upper()}" not in documented
    ]
    assert not missing, f"undocumented settings {missing}; regenerate with python {__file__}"


def test_settings_table_is_current():
    assert _documented_table() == settings_table(), f"regenerate with python {__file__}"


def _rewrite() -> None:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    _rewrite()


def test_every_lint_code_is_in_the_readmes_table():
    from app.lint import codes

    text = README.read_text(encoding="utf-8")
    missing = [code for code in codes() if f"| `{code}` |" not in text]
    assert not missing, f"add these to the README's lint table: {missing}"
