"""No import loops between our modules (issue 10).

Every module under `signer/` and `coordinator/` is parsed with `ast`; each `import a.b` and
`from a import b` naming one of our modules is an edge, wherever it sits: an import inside a
function still ties the two modules together (a deferred import is how a loop hides). Imports
under `if TYPE_CHECKING:` are left out: they never run. `from pkg import name` is an edge to
`pkg.name` when that is a module, else to `pkg` (its `__init__`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("signer", "coordinator")


def module_name(root: Path, path: Path) -> str:
    """`signer/tss/presign.py` -> `signer.tss.presign`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of `packages` under `root`, by dotted name."""
    return {module_name(root, p): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, skipping the bodies of `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for orelse in child.orelse:
                yield from _import_nodes(ast.Module(body=[orelse], type_ignores=[]))
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that module `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
            continue
        if node.level:
            base_parts = package.split(".")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in known:
                out.add(sub)
            elif base in known:
                out.add(base)
    return out


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Module -> the modules it imports, restricted to `packages`."""
    mods = modules(root, packages)
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with a loop (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: (-len(c), c))


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


# --- the checker can fail ---------------------------------------------------------------------------


def test_finds_a_loop_through_a_deferred_relative_import(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from .b import thing\n",
            "pkg/b.py": "def f():\n    from . import a\n    return a\nthing = 1\n",
            "pkg/c.py": "import pkg.a\n",
        },
    )
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_finds_a_loop_of_plain_imports_and_ignores_type_checking(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import x\n",
            "pkg/sub/__init__.py": "from ..top import y\nx = 1\n",
            "pkg/top.py": "import pkg\ny = 2\n",
            "pkg/hint.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.top\n",
            "pkg/hint2.py": (
                "import typing\nif typing.TYPE_CHECKING:\n    from . import top\nelse:\n    import pkg.hint\n"
            ),
        },
    )
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.hint"] == set()
    assert graph["pkg.hint2"] == {"pkg.hint"}
    assert cycles(graph) == [["pkg", "pkg.sub", "pkg.top"]]


# --- our code ---------------------------------------------------------------------------------------


def test_signer_has_no_import_loops() -> None:
    assert cycles(import_graph(ROOT, ["signer"])) == []


def test_signer_and_coordinator_have_no_import_loops() -> None:
    assert cycles(import_graph(ROOT, PACKAGES)) == []
