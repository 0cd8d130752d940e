"""The package's modules form no import circle, and each one imports on its own.

What counts as "A imports B" here: every ``import``/``from ... import`` of a module of the
package in A's source, wherever it stands — at the top, inside a function (imported on
first use), or under ``if TYPE_CHECKING:``. Typing-only imports count: two modules whose
types name each other are as tied as two that call each other, and a reviewer reading the
module map sees them as arrows too. Imports made by ``importlib.import_module`` with a
computed name (the lazy re-exports of ``__init__`` modules, the backend registry) are not
read. A module importing its own package's ``__init__`` only implicitly (as Python does
for every submodule) is no arrow either.

The README's "Internals" section draws the map these tests keep.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "numerous.tasks"


def modules(root: Path, package: str) -> Dict[str, Path]:
    """Every module of ``package`` (its dotted name) below ``root``, with its file."""
    found: Dict[str, Path] = {}
    base = root / Path(*package.split("."))
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imported(module: str, is_package: bool, tree: ast.AST, known: Set[str]) -> Iterator[str]:
    """The modules of ``known`` that ``module``'s source imports, anywhere in it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                while name and name not in known:
                    name = name.rpartition(".")[0]
                if name:
                    yield name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in known:  # ``from . import _current``
                    yield submodule
                elif target in known:
                    yield target


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> Dict[str, Set[str]]:
    """``{module: the package's modules it imports}``, read from the sources."""
    files = modules(root, package)
    graph: Dict[str, Set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[module] = set(_imported(module, path.name == "__init__.py", tree, set(files))) - {module}
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import circle of ``graph`` (``[a, b, ..., a]``), or None if there is none."""
    done: Set[str] = set()
    path: List[str] = []
    on_path: Set[str] = set()

    def visit(module: str) -> Optional[List[str]]:
        path.append(module)
        on_path.add(module)
        for imported in sorted(graph.get(module, ())):
            if imported in on_path:
                return path[path.index(imported) :] + [imported]
            if imported not in done:
                cycle = visit(imported)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 50, sorted(graph)  # the whole package was read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_session_sits_above_the_task_and_the_backends_above_both() -> None:
    """The floors the README's module map shows, for the modules the old circle tied."""
    graph = import_graph()
    reaches: Dict[str, Set[str]] = {}

    def reached(module: str) -> Set[str]:
        if module not in reaches:
            reaches[module] = set()
            for imported in graph[module]:
                reaches[module] |= {imported} | reached(imported)
        return reaches[module]

    assert "numerous.tasks.task" in reached("numerous.tasks.session")
    assert "numerous.tasks.task" in reached("numerous.tasks.backends.execution")
    for low in ("control", "future", "_options", "_current", "maps", "_map_run", "_map_chunk"):
        assert "numerous.tasks.task" not in reached(f"numerous.tasks.{low}"), low
        assert "numerous.tasks.session" not in reached(f"numerous.tasks.{low}"), low
    for module in graph:  # no backend knows the session, and none another backend's insides
        if _backend_of(module) is not None:
            assert "numerous.tasks.session" not in reached(module), module
            foreign = {
                m
                for m in graph[module]
                if _backend_of(m) not in (None, _backend_of(module)) and m.rpartition(".")[2].startswith("_")
            }
            assert not foreign, (module, foreign)


def _backend_of(module: str) -> Optional[str]:
    """``local`` for ``numerous.tasks.backends.local._worker``; None outside a backend."""
    parts = module.split(".")
    if len(parts) < 4 or parts[2] != "backends" or parts[3] in ("base", "registry", "execution"):
        return None
    return parts[3]


@pytest.mark.parametrize(
    "a, b, circle",
    [
        ("from .b import x\n", "from .a import y\n", True),  # at the top
        ("def f():\n    from . import b\n", "from .a import y\n", True),  # on first use
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import x\n", "from . import a\n", True),
        ("import pkg.b.c\n", "import pkg.a\n", True),  # no pkg.b.c: it is pkg.b that is imported
        ("from .b import x\n", "x = 1\n", False),
    ],
    ids=["top-level", "function-level", "typing-only", "absolute", "none"],
)
def test_the_circle_finder_sees_every_kind_of_import(tmp_path: Path, a: str, b: str, circle: bool) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(a)
    (package / "b.py").write_text(b)
    graph = import_graph(tmp_path, "pkg")
    assert find_cycle(graph) == (["pkg.a", "pkg.b", "pkg.a"] if circle else None), graph


def _importable(module: str) -> bool:
    """Whether the optional dependency a module needs is installed (``dask`` extra)."""
    if ".backends.dask." in f"{module}." and importlib.util.find_spec("distributed") is None:
        return False
    return True


@pytest.mark.timeout(600)
def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    """Each module can be the first of the package a program imports: no import order is
    needed for one to work (a circle broken by luck would fail here)."""
    names = [m for m in sorted(modules(ROOT, PACKAGE)) if _importable(m)]

    def run(module: str) -> Optional[str]:
        result = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        return None if result.returncode == 0 else f"{module}:\n{result.stderr[-2000:]}"

    with ThreadPoolExecutor(max_workers=2) as pool:  # the suite runs on 2 cores
        failures = [failure for failure in pool.map(run, names) if failure]
    assert len(names) > 50
    assert not failures, "\n".join(failures)
