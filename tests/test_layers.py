"""Layers import one way: recsite -> recommender -> sync.

``sync`` is a reusable app: nothing under ``sync/`` may import the project
(``recsite``) or the domain (``recommender``); nothing under
``recommender/`` may import the project. Read from the source with ``ast``,
so an import inside a function counts as much as one at the top.
"""

import ast
from pathlib import Path

import pytest

from tests.support.source import parse_module

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "sync": ("recsite", "recommender"),
    "recommender": ("recsite",),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Return ``(line, module)`` for every import statement in ``path``."""
    tree = parse_module(path)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.append((node.lineno, node.args[0].value))
    return found


def _is_dynamic_import(node: ast.Call) -> bool:
    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
    return (
        name in {"import_module", "__import__", "import_string"}
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """Return ``"file:line imports module"`` for each import across the layers."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_never_import_higher_ones(package):
    assert violations(package, FORBIDDEN[package]) == []


def test_the_scan_sees_every_kind_of_import(tmp_path):
    """The checker itself: top-level, nested, from- and dynamic imports all count."""
    source = tmp_path / "mod.py"
    source.write_text(
        "import recsite.metrics\n"
        "from recommender import models\n"
        "from . import sibling\n"
        "def f():\n"
        "    from recsite.live_stats import stats\n"
        "    import_module('recommender.services')\n"
    )
    modules = [module for _, module in imported_modules(source)]
    assert modules == [
        "recsite.metrics",
        "recommender",
        "recsite.live_stats",
        "recommender.services",
    ]
