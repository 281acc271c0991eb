"""The package's layering (docs/architecture.md) and the absence of import circles, checked on every test run.

Two independent checks: import-linter's contracts in pyproject.toml ([tool.importlinter]), and a plain
search of grimp's import graph for circles that does not read that contract, so loosening the contract
cannot let a circle in unnoticed. Both count imports inside functions too.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """`lint-imports` (import-linter) passes: layers, no sibling circles, the launcher plugin on top."""
    lint_imports = "from importlinter.cli import lint_imports_command; lint_imports_command()"  # = `lint-imports`
    proc = subprocess.run([sys.executable, "-c", lint_imports, "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"import-linter found broken contracts:\n{proc.stdout}\n{proc.stderr}"
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["id"] for c in contracts} >= {"layers", "acyclic", "plugins"}
    # Loosening needs a visible edit here too: no import is exempted, and every module must have a layer.
    assert not [c["id"] for c in contracts if c.get("ignore_imports")], "fix the import rather than ignore it"
    assert next(c for c in contracts if c["id"] == "layers").get("exhaustive") is True
    assert f"Contracts: {len(contracts)} kept, 0 broken." in proc.stdout, proc.stdout  # each one read and checked


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (each holds at least one circle), sorted."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in edges:  # Tarjan's algorithm, iterative (no recursion limit)
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            module, i = work.pop()
            if i == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            if i < len(edges[module]):
                work.append((module, i + 1))
                nxt = edges[module][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[module] = min(low[module], index[nxt])
                continue
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
    return sorted(circles)


def describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    """Each import inside one circle, with its line: what a reader needs to break it."""
    lines = []
    for importer in component:
        for imported in sorted(set(graph.find_modules_directly_imported_by(importer)) & set(component)):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(f"  {importer}:{detail['line_number']}  {detail['line_contents']}")
    return "\n".join(lines)


def test_circle_search_finds_a_circle():
    """The search itself: a lazy import that closes a circle is found (so the next test can fail)."""
    graph = grimp.build_graph("introspection", include_external_packages=False)
    graph.add_import(importer="introspection.core.store", imported="introspection.stages.model_ref", line_number=1,
                     line_contents="from introspection.stages.model_ref import ModelRef")
    (circle,) = [c for c in import_circles(graph) if {"introspection.core.store", "introspection.stages.model_ref"} <= set(c)]
    assert "introspection.core.store:1  from introspection.stages.model_ref import ModelRef" in describe(graph, circle)


def test_no_import_circles():
    """No module imports, at module level or inside a function, anything that imports it back."""
    graph = grimp.build_graph("introspection", include_external_packages=False)
    circles = import_circles(graph)
    assert not circles, "import circles in introspection/ (break each; docs/architecture.md):\n" + "\n\n".join(
        describe(graph, c) for c in circles)
