"""Where the benchmarks live, which tree they measure, where results go."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The tree whose server is measured (default: this one). Pointing it at a
# copy lets a proposed change be measured without touching this tree.
APP_ROOT = Path(os.environ.get("BENCH_APP_ROOT", ROOT))
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PY = sys.executable
