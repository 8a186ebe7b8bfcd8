"""The runner's import graph (runner/neurant_db), read statically with `ast`: no module
reaches itself through imports, function-level imports included, and no module imports
another module's private (`_name`) names."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import neurant_db

PACKAGE = Path(neurant_db.__file__).parent


@dataclass
class ImportGraph:
    edges: dict[str, set[str]] = field(default_factory=dict)
    private: list[str] = field(default_factory=list)  # "importer: module._name"

    def cycles(self) -> list[list[str]]:
        """Every strongly connected set of two or more modules (Tarjan), sorted."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        found: list[list[str]] = []

        def visit(module: str) -> None:
            index[module] = low[module] = len(index)
            stack.append(module)
            for target in sorted(self.edges[module]):
                if target not in index:
                    visit(target)
                    low[module] = min(low[module], low[target])
                elif target in stack:
                    low[module] = min(low[module], index[target])
            if low[module] == index[module]:
                members: list[str] = []
                while True:
                    member = stack.pop()
                    members.append(member)
                    if member == module:
                        break
                if len(members) > 1:
                    found.append(sorted(members))

        for module in sorted(self.edges):
            if module not in index:
                visit(module)
        return sorted(found)


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file for every module of the package at root."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def import_graph(root: Path) -> ImportGraph:
    """Every import of every module of the package at root, wherever it stands (module
    level, in a function, under `if TYPE_CHECKING`), as edges between its modules."""
    modules = module_names(root)
    graph = ImportGraph()
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package[:len(package) - node.level + 1], *([node.module] if node.module else [])])
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:  # `from . import migrate`: the module itself
                        targets.add(f"{base}.{alias.name}")
                    elif base in modules:
                        targets.add(base)
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            graph.private.append(f"{name}: {base}.{alias.name}")
        graph.edges[name] = targets - {name}
    return graph


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(text, encoding="utf-8")
    return package


def test_the_runner_package_has_no_import_cycle() -> None:
    assert import_graph(PACKAGE).cycles() == []


def test_no_runner_module_imports_a_private_name_of_another() -> None:
    assert import_graph(PACKAGE).private == []


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "a.py": "from .b import helper\n",
        "b.py": "def helper() -> None:\n    from . import a\n",
        "sub/__init__.py": "",
        "sub/c.py": "from ..a import helper\n",
    })
    graph = import_graph(package)
    assert graph.cycles() == [["pkg.a", "pkg.b"]]
    assert graph.edges["pkg.sub.c"] == {"pkg.a"}


def test_an_import_of_a_private_name_is_found(tmp_path: Path) -> None:
    package = write_package(tmp_path, {"a.py": "def _hidden() -> None: ...\n",
                                       "b.py": "from .a import _hidden\n"})
    assert import_graph(package).private == ["pkg.b: pkg.a._hidden"]


def test_the_graph_covers_every_module_of_the_runner() -> None:
    graph = import_graph(PACKAGE)
    assert {"neurant_db.cli", "neurant_db.cli.root", "neurant_db.migrate", "neurant_db.online"} <= set(graph.edges)
    assert "neurant_db.pytest_plugin" in graph.edges["neurant_db.cli.local_server"]  # a function-level import
