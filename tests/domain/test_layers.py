"""The package's layers: no import cycles, and dependencies pointing one way (issue 13).

cli/app -> web, api, oauth, portal, jobs -> domain -> store, synth, espi, scenario -> clock, settings,
errors. The import graph is read from the source with ``ast`` (nothing is imported), counting every
import: at module level, inside functions and under ``TYPE_CHECKING``. A lazy import still ties two
modules together, so a cycle cannot be hidden by moving an import into a function.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "mock_custodian"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

# (layer, layers or third-party packages it must never import): the lower layer may not know the upper.
FORBIDDEN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store", ("domain", "api", "portal", "oauth", "web", "espi", "scenario", "pki", "cli", "jobs", "app")),
    ("domain", ("api", "portal", "oauth", "web", "cli", "app", "jobs", "flask")),
    ("web", ("api", "portal", "oauth", "cli", "app")),
    ("scenario", ("flask", "store", "domain", "web", "api", "portal", "oauth", "cli", "app", "jobs")),
    ("synth", ("flask", "store", "domain")),
    ("espi", ("flask", "store", "domain")),
)
# The web layer once had a cycle through app.py (app imported the blueprints, they imported app's
# runtime); its own test names it, so it cannot come back unnoticed.
WEB_CYCLE_MODULES = ("app", "api", "portal", "oauth")
# Third-party packages appear in the graph by their top-level name with this prefix.
EXTERNAL = "external:"


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name (without the package prefix; a package by its own name) -> source file."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported_names(path: Path, name: str, is_package: bool) -> set[str]:
    """Every absolute dotted name the file imports (``from a import b`` gives ``a.b``: module ``a.b`` or ``a``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = f"{PACKAGE}.{name}".split(".") if name else [PACKAGE]
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, and ``external:<name>`` for each third-party package."""
    files = module_files(root)
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for dotted in imported_names(path, module, path.name == "__init__.py"):
            if dotted != PACKAGE and not dotted.startswith(PACKAGE + "."):
                graph[module].add(EXTERNAL + dotted.split(".")[0])
                continue
            target = dotted[len(PACKAGE) + 1:]
            while target and target not in files:  # a name imported from a module: the module
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Components of more than one module (Tarjan), each sorted: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(components)


def layer(module: str) -> str:
    return module.split(".")[0]


def is_web_cycle(component: list[str]) -> bool:
    return any(layer(m) in WEB_CYCLE_MODULES for m in component)


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for lower, upper in FORBIDDEN:
        for module in sorted(m for m in graph if layer(m) == lower):
            for target in sorted(graph[module]):
                name = target.removeprefix(EXTERNAL)
                if layer(name) in upper:
                    found.append(f"{module} -> {name}")
    return found


GRAPH = import_graph()


def test_the_graph_is_read_from_the_source() -> None:
    """Guards the checks below against passing on an empty or misread graph."""
    assert {"cli", "cli.common", "store.db", "domain.lifecycle", "app", "synth.config"} <= set(GRAPH)
    assert "store.db" in GRAPH["domain.lifecycle"]  # a top-level import
    assert "cli.common" in GRAPH["cli.control"] and "external:flask" in GRAPH["app"]
    assert "jobs.worker" in GRAPH["cli.worker"]  # an import inside a function counts too


def test_the_cycle_finder_finds_cycles(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text(f"from {PACKAGE}.sub import b\n")
    (package / "sub" / "b.py").write_text(f"def f():\n    from {PACKAGE}.sub.c import g\n")
    (package / "sub" / "c.py").write_text("from ..a import x\n")  # relative, back to a
    (package / "d.py").write_text(f"import {PACKAGE}.a\n")
    graph = import_graph(package)
    assert strongly_connected(graph) == [["a", "sub.b", "sub.c"]]


def test_no_import_cycles_outside_the_web_layer() -> None:
    assert [c for c in strongly_connected(GRAPH) if not is_web_cycle(c)] == []


def test_no_import_cycle_through_the_web_layer() -> None:
    assert [c for c in strongly_connected(GRAPH) if is_web_cycle(c)] == []


def test_dependencies_point_one_way() -> None:
    """Storage stores, rules do not know the web, the data engine and the writers know neither."""
    assert forbidden_imports(GRAPH) == []


def test_a_forbidden_import_is_reported() -> None:
    graph = {"store.db": {"domain.world", "clock"}, "synth.readings": {"external:flask", "synth.config"},
             "domain.x": {"app"}}
    assert forbidden_imports(graph) == ["store.db -> domain.world", "domain.x -> app", "synth.readings -> flask"]


def test_command_groups_share_only_the_public_names_of_cli_common() -> None:
    """A command group imports cli.common, never another command group, and no private helper."""
    groups = sorted(m for m in GRAPH if m.startswith("cli.") and m != "cli.common")
    assert {"cli.control", "cli.serve", "cli.scenario"} <= set(groups)
    for module in groups:
        assert {t for t in GRAPH[module] if layer(t) == "cli"} <= {"cli.common"}, module
        for node in ast.walk(ast.parse(module_files()[module].read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == f"{PACKAGE}.cli.common":
                assert not [a.name for a in node.names if a.name.startswith("_")], module
