"""The house style is checked, not hoped for: ruff over the code, tests and benchmarks."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the test extra: run `make test` to install it"
    result = subprocess.run(
        [ruff, "check", "app", "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the test extra: run `make test` to install it"
    result = subprocess.run(
        [ruff, "format", "--check", "app", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, "run `ruff format app tests benchmarks`:\n" + result.stdout


def test_mypy_is_clean():
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    assert mypy, "mypy is part of the test extra: run `make test` to install it"
    # The configuration ([tool.mypy] in pyproject.toml) says what is checked and how strictly.
    result = subprocess.run([mypy], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _long_definitions():
    """(path, line, name) of functions over 50 lines and classes over 150 lines."""
    import ast

    for path in sorted((REPO / "app").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            limit = 150 if isinstance(node, ast.ClassDef) else 50
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno - node.lineno + 1 > limit:
                    above = first - 2  # the comment block right above, read from its first line
                    while above > 0 and lines[above - 1].lstrip().startswith("#"):
                        above -= 1
                    yield path, first, lines[above].strip() if first > 1 else "", node.name


def test_long_functions_and_classes_say_why():
    # A function over 50 lines or a class over 150 needs a "# Long: <why>" line right above it.
    unexplained = [
        f"{path.relative_to(REPO)}:{line} {name}"
        for path, line, above, name in _long_definitions()
        if not above.startswith("# Long:")
    ]
    assert not unexplained, "split these, or say why they are long:\n" + "\n".join(unexplained)
