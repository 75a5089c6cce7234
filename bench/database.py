"""The benchmarks' own PostgreSQL database and a process that commits catalog changes."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from typing import Any

from bench.paths import BENCH, PY, ROOT
from bench.procfs import now
from bench.servers import recsite_env


class BenchDB:
    """A PostgreSQL database of the benchmarks' own, recreated per run."""

    def __init__(self, name: str = "recsite_bench") -> None:
        if name in {"test", "test_test", "postgres"}:
            raise ValueError(f"refusing to use database {name!r}")
        self.name = name
        self.host = os.environ.get("BENCH_PGHOST", "127.0.0.1")
        self.url = f"postgres://postgres@{self.host}:5432/{name}"

    def prepare(self, *, fresh: bool) -> None:
        """Recreate the benchmark catalog (10,000 items) unless reusing it."""
        if fresh:
            print(f"preparing database {self.name} (10,000 items)…", flush=True)
            self.recreate(items=10_000, users=200)

    def recreate(self, *, items: int, users: int) -> float:
        """Drop, create, migrate and seed the database; return the seconds taken."""
        started = now()
        for tool in ("dropdb", "createdb"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} not found (PostgreSQL client tools)")
        subprocess.run(
            ["dropdb", "-h", self.host, "-U", "postgres", "--if-exists", self.name],
            check=True,
            timeout=60,
        )
        subprocess.run(
            ["createdb", "-h", self.host, "-U", "postgres", self.name],
            check=True,
            timeout=60,
        )
        env = recsite_env(self)
        for args in (
            ["migrate", "--verbosity", "0"],
            ["seed_demo", "--items", str(items), "--users", str(users)],
        ):
            subprocess.run(
                [PY, "manage.py", *args],
                cwd=ROOT,
                env=env,
                check=True,
                timeout=900,
                stdout=subprocess.DEVNULL,
            )
        return now() - started

    def task(self, *args: str, timeout_secs: float = 300) -> Any:
        """Run ``bench/djangotasks.py`` against this database; return its JSON."""
        out = subprocess.run(
            [PY, str(BENCH / "djangotasks.py"), *args],
            cwd=ROOT,
            env=recsite_env(self),
            check=True,
            timeout=timeout_secs,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    def committer(self) -> Committer:
        return Committer(self)


class Committer:
    """A long-lived Django process that saves items on request (catalog changes).

    Each ``save N`` line makes it save N items, one transaction each, with the
    send time (``time.monotonic()``) written into the title just before
    ``save()``; the change is broadcast through Redis after commit.
    """

    def __init__(self, db: BenchDB) -> None:
        self.proc = subprocess.Popen(
            [PY, str(BENCH / "djangotasks.py"), "committer"],
            cwd=ROOT,
            env=recsite_env(db),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._expect("ready")

    def _expect(self, word: str, timeout_secs: float = 60) -> str:
        deadline = now() + timeout_secs
        while now() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError("committer exited")
                if line.startswith(word):
                    return line
        raise TimeoutError(f"committer did not say {word!r}")

    def save(self, count: int = 1) -> list[float]:
        """Commit ``count`` changes; return their send times."""
        self.proc.stdin.write(f"save {count}\n")
        self.proc.stdin.flush()
        line = self._expect("done")
        return json.loads(line.split(" ", 1)[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)
