"""The dependency rule of docs/DEVELOPERS.md, checked on the source (no import is executed).

- No import circle between the project's modules (app, admin, forms), lazy imports included.
- Domain modules (`app/<domain>.py`) never reach Flask, the web layer, views, forms or the back
  office. The model layer (`app.models`, `app.extensions`) is the persistence boundary: models are
  Flask-SQLAlchemy classes, so the walk stops there.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "admin", "forms")
# Modules of the app package that are not domain modules: the factory, its configuration, the
# command line and the model boundary.
NOT_DOMAIN = {"app", "app.cli", "app.cli_ops", "app.config", "app.extensions"}
BOUNDARY = ("app.models", "app.extensions")
WEB = ("flask", "flask_", "werkzeug", "jinja2", "markupsafe", "app.web", "app.views", "admin", "forms")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


def _imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every module `path` imports, anywhere in the file except `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for body in node.body for child in ast.walk(body))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    result: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            result.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                result.add(candidate if candidate in known else base)
    return result


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, name, known) for name, path in known.items()}


def _internal(graph: dict[str, set[str]], name: str) -> set[str]:
    return {target for target in graph[name] if target in graph and target != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in _internal(graph, node):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _domain_modules(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        name
        for name in graph
        if name.startswith("app.")
        and name not in NOT_DOMAIN
        and not name.startswith(("app.models", "app.web", "app.views"))
    )


def test_the_import_graph_has_no_cycle():
    assert _cycles(_graph()) == []


def test_domain_modules_never_reach_flask_or_the_web_layer():
    graph = _graph()
    offenders = {}
    for start in _domain_modules(graph):
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name in seen or name.startswith(BOUNDARY):
                continue
            seen.add(name)
            bad = sorted(t for t in graph[name] if t == "flask" or t.startswith(WEB))
            if bad:
                offenders[start] = (name, bad)
            todo.extend(_internal(graph, name))
    assert offenders == {}


def test_the_checks_see_a_cycle_and_a_flask_import():
    """The walk itself works: a planted circle and a planted Flask import are found."""
    graph = {"app.a": {"app.b"}, "app.b": {"app.a", "flask"}, "app.c": {"app.b"}}
    assert _cycles(graph) == [["app.a", "app.b"]]
    assert "flask" in graph["app.b"] and _domain_modules(graph) == ["app.a", "app.b", "app.c"]
