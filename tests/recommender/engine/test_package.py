"""The engine package stands alone: pure numpy, small modules, no cycles."""

import ast
import json
import subprocess
import sys
import typing
from pathlib import Path

from recommender.engine import actions
from tests.support.source import parse_module

PACKAGE = Path(__file__).resolve().parents[3] / "recommender" / "engine"


def _modules() -> list[str]:
    return sorted(f"recommender.engine.{p.stem}" for p in PACKAGE.glob("*.py"))


def test_no_module_under_the_engine_imports_django():
    # A fresh interpreter: the test process itself has Django loaded.
    code = (
        "import importlib, json, sys\n"
        f"for name in {_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m == 'django' or m.startswith(('django.', 'recsite', 'sync')))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parents[1],
    )
    assert json.loads(out.stdout) == []


def _engine_imports(path: Path) -> set[str]:
    """Return the ``recommender.engine`` modules ``path`` imports at module level."""
    found = set()
    for node in parse_module(path).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("recommender.engine.")}
    return found


def test_modules_are_small_and_import_one_way():
    graph = {}
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text().splitlines()) < 600, path.name
        if path.stem != "__init__":
            graph[f"recommender.engine.{path.stem}"] = _engine_imports(path)
    # Depth-first search for a cycle among the package's modules.
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in graph.get(name, ()):
            assert state.get(dep) != 1, f"import cycle: {[*trail, name, dep]}"
            if dep not in state:
                visit(dep, [*trail, name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_the_action_vocabulary_is_defined_once():
    names = [a.name for a in actions.ACTIONS]
    assert list(typing.get_args(actions.ActionName)) == names
    assert list(actions.ACTION_WEIGHTS) == names
    weights = [a.weight for a in actions.ACTIONS]
    assert weights == sorted(weights)  # weakest first
    assert [row["name"] for row in actions.actions_payload()] == names
