"""The layer contract of DESIGN.md §2, read from the code with `ast`, and docs/architecture.md
kept true by it.

Layers only point down: web (api, views, cli and the app's assembly) -> service -> core ->
settings/errors. The core never imports FastAPI or Starlette; api and views do not import each
other; no package and no module imports another in a cycle; an app import inside a function
needs a listed reason (it would otherwise hide a cycle).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app"

# Top-level unit of the app (a package or a module) -> its layer; lower numbers sit lower.
LAYERS: dict[str, int] = {
    "errors": 0,
    "settings": 0,
    "chat": 1,
    "assets": 1,
    "templating": 1,
    "tokenizers": 1,
    "dialects": 1,
    "lint": 1,
    "inspect": 1,
    "train": 1,
    "score": 1,
    "service": 2,
    "api": 3,
    "views": 3,
    "cli": 3,
    "deps": 3,
    "middleware": 3,
    "web_security": 3,
    "lifespan": 3,
    "main": 3,
    "__main__": 3,
}
LAYER_NAMES = {0: "base", 1: "core", 2: "service", 3: "web"}
WEB_FRAMEWORKS = ("fastapi", "starlette")
# Web units that must not import each other.
SEPARATE = ({"api", "views"},)
# (importing module, imported module) -> why the import sits inside a function.
FUNCTION_LEVEL_IMPORTS: dict[tuple[str, str], str] = {
    ("app.score.models", "app.train.modeling"): "torch and transformers load on the first scoring",
    ("app.score.models", "app.train.distributed"): "torch loads on the first scoring",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in APP.rglob("*.py")}


def _unit(module: str) -> str:
    """app.chat.render -> chat; app.main -> main; app -> app."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "app"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if modules()[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules an import statement loads (`from app.x import y` is app.x.y if a module)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = _resolve(module, node)
    for alias in node.names:
        full = f"{base}.{alias.name}"
        yield full if full in modules() else base


@cache
def imports() -> list[tuple[str, str, bool, int]]:
    """(importer, imported, inside a function, line) for every import in app/."""
    found = []
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inner: set[int] = set()
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                inner.update(id(n) for n in ast.walk(func) if n is not func)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(module, node):
                    found.append((module, target, id(node) in inner, node.lineno))
    return found


def app_edges() -> set[tuple[str, str]]:
    return {(a, b) for a, b, _, _ in imports() if b == "app" or b.startswith("app.")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in modules()} - {"app"}
    assert units <= set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"


def test_layers_only_point_down():
    wrong = sorted(
        f"{a} ({LAYER_NAMES[LAYERS[_unit(a)]]}) imports {b} ({LAYER_NAMES[LAYERS[_unit(b)]]})"
        for a, b in app_edges()
        if _unit(a) in LAYERS and _unit(b) in LAYERS and LAYERS[_unit(b)] > LAYERS[_unit(a)]
    )
    assert not wrong, "\n".join(wrong)


def test_core_and_service_never_import_the_web_framework():
    wrong = sorted(
        f"{a}:{line} imports {b}"
        for a, b, _, line in imports()
        if LAYERS.get(_unit(a), 3) < LAYERS["api"] and b.split(".")[0] in WEB_FRAMEWORKS
    )
    assert not wrong, "\n".join(wrong)


def test_core_and_service_never_touch_the_app_state():
    wrong = [
        str(path.relative_to(REPO))
        for module, path in modules().items()
        if LAYERS.get(_unit(module), 3) < LAYERS["api"]
        and re.search(r"\bapp\.state\b", path.read_text(encoding="utf-8"))
    ]
    assert not wrong, f"only the web layer's start-up hooks own app.state: {wrong}"


def test_api_and_views_do_not_import_each_other():
    wrong = sorted(
        f"{a} imports {b}"
        for a, b in app_edges()
        for group in SEPARATE
        if {_unit(a), _unit(b)} <= group and _unit(a) != _unit(b)
    )
    assert not wrong, "\n".join(wrong)


def test_no_package_cycles():
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in app_edges():
        if _unit(a) != _unit(b) and "app" not in (_unit(a), _unit(b)):
            graph[_unit(a)].add(_unit(b))
    assert not _cycles(graph)


def test_no_module_cycles():
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in app_edges():
        if b in modules() and a != b:
            graph[a].add(b)
    assert not _cycles(graph)


def test_function_level_app_imports_have_a_reason():
    found = {(a, b): line for a, b, inner, line in imports() if inner and b.startswith("app")}
    unexplained = sorted(
        f"{a}:{line} imports {b}"
        for (a, b), line in found.items()
        if (a, b) not in FUNCTION_LEVEL_IMPORTS
    )
    assert not unexplained, "import at the top, or list it with a reason:\n" + "\n".join(
        unexplained
    )
    stale = sorted(set(FUNCTION_LEVEL_IMPORTS) - set(found))
    assert not stale, f"listed but gone: {stale}"


def test_architecture_doc_lists_every_unit_in_its_layer():
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w_]+)` \| (\w+) \|", doc, re.M))
    want = {unit: LAYER_NAMES[layer] for unit, layer in LAYERS.items()}
    assert rows == want, "docs/architecture.md's table must match tests/test_architecture.py"


def test_the_contract_sees_real_imports():
    # Guards the guard: the parser must find what is certainly there.
    edges = app_edges()
    assert ("app.api.render", "app.service.render") in edges
    assert ("app.chat.render", "app.chat.layout") in edges
    assert len({_unit(m) for m in modules()}) >= len(LAYERS) - 1
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
