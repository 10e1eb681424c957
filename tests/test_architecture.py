"""The code's shape, checked with ``ast`` so it stays as docs/architecture.md describes it.

* Layers, bottom to top: ``relight_base`` < ``datasets``, ``models`` < ``reports`` < ``bench``.  A module
  may import its own package and the layers below it, never a layer above or beside it.
* Inside ``bench``: ``bench.cli`` is the top (only ``bench.__main__`` imports it); ``bench.harness``
  imports nothing from ``bench.perf`` but the inference speed-ups (``fast_inference``, ``winograd``), and
  those import nothing from the harness; ``bench.launch`` builds on the harness, which never imports it.
* No circle anywhere in the module import graph, counting imports inside functions too.
* No function or method longer than 60 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("relight_base", "datasets", "models", "reports", "bench")
RANK = {"relight_base": 0, "datasets": 1, "models": 1, "reports": 2, "bench": 3}
SPEEDUPS = ("bench.perf.fast_inference", "bench.perf.winograd")
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
    return files


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (``from X import y`` counts X.y if that is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def forbidden(src: str, dst: str) -> str | None:
    """Why the edge src -> dst breaks the layering, or None if it is allowed."""
    top_src, top_dst = src.split(".")[0], dst.split(".")[0]
    if top_src != top_dst and RANK[top_dst] >= RANK[top_src]:
        return f"{top_src} may not import {top_dst} (same or higher layer)"
    if dst.startswith("bench.cli") and not src.startswith("bench.cli") and src != "bench.__main__":
        return "only bench.__main__ and bench.cli itself import the CLI"
    if src.startswith("bench.harness") and dst.startswith("bench.perf") and dst not in SPEEDUPS:
        return "the harness may use the inference speed-ups only, not the perf suite"
    if src in SPEEDUPS and dst.startswith(("bench.harness", "bench.cli")):
        return "the inference speed-ups sit below the harness"
    if dst.startswith("bench.launch") and src.startswith(("bench.harness", "bench.perf")):
        return "the launchers sit above the harness: they start it, it does not know them"
    return None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walker_sees_real_edges():
    """Guards the checks below against passing because the walker found nothing."""
    graph = import_graph()
    assert "models.registry" in graph["models.mbnet"]
    assert "relight_base.errors" in graph["datasets.errors"]
    assert "bench.harness.train" in graph["bench.harness.run"]
    assert sum(len(v) for v in graph.values()) > 100


def test_no_import_runs_up_or_across_the_layers():
    bad = [f"{src} -> {dst}: {why}" for src, dsts in import_graph().items() for dst in sorted(dsts)
           if (why := forbidden(src, dst))]
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    "graph, expected",
    [({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]), ({"a": {"b"}, "b": {"c"}, "c": set()}, None)],
)
def test_find_cycle_on_hand_made_graphs(graph, expected):
    assert find_cycle(graph) == expected


@pytest.mark.parametrize(
    "src, dst, allowed",
    [
        ("datasets.io", "relight_base.atomic", True),
        ("datasets.io", "models.registry", False),
        ("models.mbnet", "bench.harness.config", False),
        ("reports.render", "bench.harness.data", False),
        ("bench.harness.run", "reports.render", True),
        ("bench.harness.evaluate", "bench.perf.fast_inference", True),
        ("bench.harness.run", "bench.perf.suite", False),
        ("bench.harness.run", "bench.cli", False),
        ("bench.launch.slurm", "bench.harness.run", True),
        ("bench.harness.run", "bench.launch.units", False),
    ],
)
def test_layer_rule_on_hand_picked_edges(src, dst, allowed):
    assert (forbidden(src, dst) is None) == allowed


def test_no_function_longer_than_60_lines():
    long = []
    for name, path in source_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
