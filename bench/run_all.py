"""Run every benchmark of bench/ in one go (``make bench``) and write results.

Moderate sizes by default, so a run takes a few minutes; ``--full`` uses the
sizes of issue 6 (1,000 users x 1 event/s for 20 s with the rate search;
fan-out to 1,000, 5,000 and 10,000 sockets; 1k/5k/10k connections). Needs
the PostgreSQL and Redis of the production setup on 127.0.0.1 (override with
BENCH_PGHOST and BENCH_REDIS_URL); the database ``recsite_bench`` (or
``--db``) is dropped and recreated. ``--quick`` is a short check that every
benchmark runs and prints its figures (under two minutes, no rate search).

    .venv/bin/python bench/run_all.py [--full|--quick] [--only latency,fanout]
                                      [--profile] [--db NAME]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.database import BenchDB
from bench.paths import BENCH, PY, ROOT

MODERATE = {
    "latency": ["--users", "300", "--rate", "1", "--duration", "10", "--step", "6"],
    "fanout": ["--sizes", "1000", "--changes", "5", "--compression-size", "500"],
    "connections": ["--sizes", "1000"],
}
QUICK = {
    "latency": ["--users", "300", "--rate", "1", "--duration", "10", "--no-search"],
    "fanout": ["--sizes", "1000", "--changes", "5", "--compression-size", "0"],
    "connections": ["--sizes", "1000"],
}
FULL = {
    "latency": ["--users", "1000", "--rate", "1", "--duration", "20", "--step", "8"],
    "fanout": [
        "--sizes",
        "1000,5000,10000",
        "--changes",
        "8",
        "--compression-size",
        "1000",
    ],
    "connections": ["--sizes", "1000,5000,10000"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--full", action="store_true", help="The issue's full sizes.")
    sizes.add_argument("--quick", action="store_true", help="A short check.")
    parser.add_argument("--only", default="", help="Comma-separated subset.")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the recsite server."
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="Seconds per benchmark."
    )
    parser.add_argument(
        "--db", default="recsite_bench", help="PostgreSQL database of the bench."
    )
    args = parser.parse_args()
    plan = FULL if args.full else QUICK if args.quick else MODERATE
    names = [n for n in args.only.split(",") if n] or list(plan)
    print(f"preparing database {args.db} (10,000 items, 200 users)…", flush=True)
    secs = BenchDB(args.db).recreate(items=10_000, users=200)
    print(f"  ready in {secs:.0f} s", flush=True)
    failed = []
    for name in names:
        argv = [
            PY,
            str(BENCH / f"{name}.py"),
            "--db",
            args.db,
            "--reuse-db",
            *plan[name],
        ]
        if args.profile and name in {"latency", "fanout"}:
            argv.append("--profile")
        print(f"\n=== {name}: {' '.join(argv[2:])}", flush=True)
        started = time.monotonic()
        # Its own process group, so a timeout also ends the servers it started.
        proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
        try:
            if proc.wait(args.timeout):
                failed.append(name)
        except subprocess.TimeoutExpired:
            print(f"{name} timed out after {args.timeout:.0f} s")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            failed.append(name)
        print(f"=== {name} took {time.monotonic() - started:.0f} s", flush=True)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
