"""The harness's structure holds: no import cycle between its modules, and the layer contract in
pyproject.toml ([tool.importlinter]: a layer imports only from layers below it) is kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

from tests.conftest import REPO


def _cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import cycle among the graph's modules (as a path a -> b -> ... -> a), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == 1:
                return [*path[path.index(imported):], imported]
            if imported not in state and (found := visit(imported)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph.modules):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_cycle_inside_the_harness() -> None:
    graph = grimp.build_graph("harness", cache_dir=None, exclude_type_checking_imports=True)
    assert len(graph.modules) > 40  # the whole package was read
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_planted_cycle() -> None:
    """The check above has teeth: the same finder on a graph with a cycle reports it."""
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert _cycle(graph) == ["p.a", "p.b", "p.c", "p.a"]


def test_layer_contract_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "harness layers KEPT" in proc.stdout


def test_layer_contract_catches_an_upward_import(tmp_path: Path) -> None:
    """A copy of the harness where config imports the board layer breaks the contract."""
    import shutil

    shutil.copytree(REPO / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    ports = tmp_path / "harness" / "config" / "ports.py"
    ports.write_text(ports.read_text() + "\nfrom harness.board import Board  # noqa\n")
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode != 0
    assert "harness layers BROKEN" in proc.stdout
    assert "harness.config.ports -> harness.board" in proc.stdout
