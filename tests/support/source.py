"""Parse the project's own modules for the import-direction tests."""

import ast
import pickle
import subprocess
import sys
from pathlib import Path

_CHILD = (
    "import ast, pickle, sys; path = sys.argv[1]; "
    "tree = ast.parse(open(path, encoding='utf-8').read(), filename=path); "
    "sys.stdout.buffer.write(pickle.dumps(tree))"
)


def parse_module(path: Path) -> ast.Module:
    """Return the syntax tree of the Python file at ``path``.

    CPython 3.11 before 3.11.8 (gh-106905) can leave the AST converter's
    recursion counter wrong after an earlier failure anywhere in the process;
    every later ``ast.parse`` then raises SystemError. A fresh interpreter
    parses the file cleanly, and syntax trees survive pickling.
    """
    source = path.read_text(encoding="utf-8")
    try:
        return ast.parse(source, filename=str(path))
    except SystemError:
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            capture_output=True,
            check=True,
            timeout=60,
        )
        return pickle.loads(child.stdout)
