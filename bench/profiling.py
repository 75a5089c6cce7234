"""Sampling a server with py-spy and summarising where its time went."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.paths import PY, RESULTS, ROOT


class Profiler:
    """Sample a server with py-spy for a fixed time, if py-spy is installed."""

    def __init__(self, pid: int, name: str, duration_secs: float) -> None:
        self.path = RESULTS / f"profile-{name}.txt"
        self.proc: subprocess.Popen | None = None
        exe = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
        if not Path(exe).exists():
            print("  (py-spy not installed: no profile)")
            return
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, int(duration_secs))),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                # Only the thread holding the GIL: a thread waiting for it
                # would show wherever it was preempted, not where CPU goes.
                "--gil",
                "--output",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def finish(self, top: int = 25) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        if not self.path.exists():
            return None
        return summarize_profile(self.path, top=top)


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def summarize_profile(path: Path, *, top: int = 25) -> dict[str, Any]:
    """Return the top self and inclusive functions of a py-spy raw profile."""
    self_time: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_short(f) for f in stack.split(";") if f]
        total += count
        if not frames:
            continue
        leaf = frames[-1]
        if "select (" in leaf or "epoll" in leaf or leaf.startswith("wait ("):
            idle += count
        self_time[leaf] += count
        for f in set(frames):
            inclusive[f] += count

    def pct(counter: Counter) -> list[list[Any]]:
        return [
            [name, round(100 * n / max(1, total), 1)]
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "idle_pct": round(100 * idle / max(1, total), 1),
        "top_self_pct": pct(self_time),
        "top_inclusive_pct": pct(inclusive),
        "raw": str(path.resolve().relative_to(ROOT)),
    }


def print_profile(title: str, prof: dict[str, Any] | None, n: int = 12) -> None:
    if not prof:
        return
    print(f"\n{title}: {prof['samples']} samples, idle {prof['idle_pct']} %")
    print("  self %   function")
    for name, p in prof["top_self_pct"][:n]:
        print(f"  {p:6.1f}   {name}")
    print("  incl %   function")
    for name, p in prof["top_inclusive_pct"][:n]:
        print(f"  {p:6.1f}   {name}")
