"""The code's shape, checked with ``ast`` so it stays as docs/architecture.md describes it.

* Packages, bottom to top: ``relight_base`` < ``datasets``, ``models`` < ``reports`` < ``bench``.  A module
  may import its own package and the packages :data:`MAY_IMPORT` lists for it (``reports`` neither ``models``
  nor ``bench``), never one above or beside it.
* Inside ``bench``, the same at the level of its sub-packages, bottom to top: ``bench.speedups`` <
  ``bench.harness`` < ``bench.perf``, ``bench.launch`` < ``bench.tune`` (trials run by the launchers) <
  ``bench.cli`` < ``bench.__main__``: no arrow up and none across (the perf suite and the launchers do not know
  each other).
* No circle anywhere: not in the module import graph (counting imports inside functions too), not in the
  graph of packages, not in the graph of ``bench``'s sub-packages.
* No function or method longer than 60 lines; no module over 350 lines outside ``models`` (whose ported
  networks are exempt: one network per file).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("relight_base", "datasets", "models", "reports", "bench")
MAY_IMPORT = {"relight_base": set(), "datasets": {"relight_base"}, "models": {"relight_base"},
              "reports": {"relight_base", "datasets"}, "bench": {"relight_base", "datasets", "models", "reports"}}
BENCH_RANK = {"bench.speedups": 0, "bench.harness": 1, "bench.perf": 2, "bench.launch": 2, "bench.tune": 2.5,
              "bench.cli": 3, "bench.__main__": 4}
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 350
LONG_MODULES_ALLOWED = ("models",)  # the ported networks: one network per file, as published


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


def bench_part(module: str) -> str | None:
    """``bench.harness.run`` -> ``bench.harness``; ``bench`` itself (its ``__init__``) -> None."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "bench" and len(parts) > 1 else None


def forbidden(src: str, dst: str) -> str | None:
    """Why the edge src -> dst breaks the layering, or None if it is allowed."""
    top_src, top_dst = src.split(".")[0], dst.split(".")[0]
    if top_src != top_dst and top_dst not in MAY_IMPORT[top_src]:
        return f"{top_src} may not import {top_dst} (a package above or beside it)"
    part_src, part_dst = bench_part(src), bench_part(dst)
    if part_src and part_dst and part_src != part_dst and BENCH_RANK[part_dst] >= BENCH_RANK[part_src]:
        return f"{part_src} may not import {part_dst} (a bench sub-package above or beside it)"
    return None


def package_graph(graph: dict[str, set[str]], level) -> dict[str, set[str]]:
    """The module graph collapsed to packages: ``level(module)`` names a module's package (None: left out)."""
    packages: dict[str, set[str]] = {}
    for src, dsts in graph.items():
        if level(src) is None:
            continue
        packages.setdefault(level(src), set()).update(
            level(dst) for dst in dsts if level(dst) is not None and level(dst) != level(src))
    return packages


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
    assert "bench.harness.train" in graph["bench.harness.experiment"]
    assert sum(len(v) for v in graph.values()) > 100


def test_no_import_runs_up_or_across_the_layers():
    bad = [f"{src} -> {dst}: {why}" for src, dsts in import_graph().items() for dst in sorted(dsts)
           if (why := forbidden(src, dst))]
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("level", [lambda m: m.split(".")[0], bench_part], ids=["packages", "bench sub-packages"])
def test_no_circle_between_packages(level):
    graph = package_graph(import_graph(), level)
    assert len(graph) >= 5, graph  # the collapse found the packages
    cycle = find_cycle(graph)
    assert cycle is None, "package circle: " + " -> ".join(cycle or [])


def test_package_graph_collapses_modules_and_finds_a_package_circle():
    modules = {"a.x": {"b.y"}, "b.y": {"b.z"}, "b.z": {"a.w"}, "a.w": set()}
    graph = package_graph(modules, lambda m: m.split(".")[0])
    assert graph == {"a": {"b"}, "b": {"a"}}
    assert find_cycle(graph) == ["a", "b", "a"]
    assert find_cycle(modules) is None  # no module circle, yet the packages form one


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
        ("reports.tables", "models.registry", False),
        ("bench.harness.modeling", "bench.speedups.fast_inference", True),
        ("bench.speedups.fast_inference", "bench.harness.modeling", False),
        ("bench.harness.run", "bench.perf.suite", False),
        ("bench.perf.suite", "bench.harness.run", True),
        ("bench.harness.run", "bench.cli", False),
        ("bench.launch.slurm", "bench.harness.run", True),
        ("bench.harness.run", "bench.launch.units", False),
        ("bench.launch.units", "bench.perf.suite", False),
        ("bench.cli.run", "bench.launch.coordinator", True),
        ("bench.__main__", "bench.cli", True),
    ],
)
def test_layer_rule_on_hand_picked_edges(src, dst, allowed):
    assert (forbidden(src, dst) is None) == allowed


def test_no_module_longer_than_350_lines():
    long = [f"{path.relative_to(ROOT)} ({count} lines)" for name, path in source_files().items()
            if not name.startswith(LONG_MODULES_ALLOWED) and (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by role):\n" + "\n".join(long)


def test_no_function_longer_than_60_lines():
    long = []
    for name, path in source_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
