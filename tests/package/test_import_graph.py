"""The package's import graph points one way: no module imports one that imports it back.

Edges are every import of a `tenant_middleware` module, at module level or inside a function
(a lazy import that breaks a circle is still a circle); imports under `if TYPE_CHECKING:` are
for the type checker alone and are left out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tenant_middleware

PACKAGE = Path(tenant_middleware.__file__).parent
ROOT = "tenant_middleware"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports outside `TYPE_CHECKING` blocks."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in known else base)
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return {target for target in found if target in known and target != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported(name, path, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                connect(target)
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
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_the_graph_sees_the_package() -> None:
    edges = graph()
    assert "tenant_middleware.runtime" in edges
    assert "tenant_middleware.assembly" in edges["tenant_middleware.runtime"]
    assert "tenant_middleware.config" in edges["tenant_middleware.runtime"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert cycles(graph()) == []


def outside_imports() -> set[str]:
    """The top-level names of what the package imports from outside itself (stdlib included)."""
    found: set[str] = set()
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.partition(".")[0])
    found.discard(ROOT)
    return found


# One interpreter loads what the package imports from outside (once: it is most of each
# import's time), then forks a child per module, as many at once as there are CPUs. A child
# starts with no tenant_middleware module loaded and imports its one alone; one that fails
# prints its module and traceback.
IMPORT_EACH = """
import importlib, os, sys, traceback
preload, names = sys.argv[1].split(","), sys.argv[2:]
for dependency in preload:
    try:
        importlib.import_module(dependency)
    except ImportError:
        pass  # an optional extra this environment lacks: the module needing it fails below
assert not [m for m in sys.modules if m.partition(".")[0] == "tenant_middleware"]
failed, running = 0, 0
for name in names:
    if running == (os.cpu_count() or 2):
        failed += os.wait()[1] != 0
        running -= 1
    if os.fork() == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            print(name, traceback.format_exc(), file=sys.stderr)
            os._exit(1)
        os._exit(0)
    running += 1
for _ in range(running):
    failed += os.wait()[1] != 0
print(len(names) - failed, "imported,", failed, "failed")
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_on_its_own() -> None:
    # Each in a fresh copy of an interpreter, so one module's imports cannot hide another's
    # circle.
    names = sorted(name for name in modules() if ".integrations" not in name)
    preload = ",".join(sorted(outside_imports()))
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, preload, *names],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split()[:2] == [str(len(names)), "imported,"], result.stdout
