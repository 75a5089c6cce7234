"""A real shop's catalog: seed a million items, then time the catalog API.

    .venv/bin/python bench/catalog.py                 # seed 1,000,000 items, measure
    .venv/bin/python bench/catalog.py --reuse         # measure the seeded database
    .venv/bin/python bench/catalog.py --items 100000 --full

Prints the seed time (``seed_demo`` alone, after migrate), then for each request
the time over HTTP on loopback (p50/p99 of ``--repeats`` requests to one
``manage.py serve`` process, gzip accepted) and the bytes on the wire: the
first page, a page deep in the catalog (keyset, so no slower), a category page,
a price range, searches by one and two words, a word with a category, and,
with ``--full``, the streamed full snapshot. Targets (issue 13): first page
≤ 50 ms and ≤ 100 KB, search by a word ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import (
    PY,
    ROOT,
    BenchDB,
    free_port,
    machine_info,
    now,
    print_table,
    recsite_env,
    start_recsite,
    summarize_ms,
    write_json,
)


def seed(db: BenchDB, *, items: int, users: int) -> float:
    """Recreate and migrate the database, then time ``seed_demo`` alone; return secs."""
    subprocess.run(
        ["dropdb", "-h", db.host, "-U", "postgres", "--if-exists", "--force", db.name],
        check=True,
        timeout=120,
    )
    subprocess.run(
        ["createdb", "-h", db.host, "-U", "postgres", db.name], check=True, timeout=60
    )
    env = recsite_env(db)
    subprocess.run(
        [PY, "manage.py", "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    started = now()
    subprocess.run(
        [PY, "manage.py", "seed_demo", "--items", str(items), "--users", str(users)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=1800,
    )
    return now() - started


def psql(db: BenchDB, sql: str) -> str:
    """Return the output of one SQL statement on the benchmark database."""
    out = subprocess.run(
        ["psql", "-h", db.host, "-U", "postgres", "-d", db.name, "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def catalog_size(db: BenchDB) -> int:
    return int(psql(db, "SELECT count(*) FROM recommender_item") or 0)


def measure(
    client: httpx.Client, name: str, path: str, params: dict[str, Any], repeats: int
) -> dict[str, Any]:
    """Request ``path`` ``repeats`` times; return timings, wire bytes and item count."""
    times_ms: list[float] = []
    wire = raw = items = 0
    for _ in range(repeats):
        started = now()
        with client.stream("GET", path, params=params) as response:
            response.raise_for_status()
            wire = sum(len(chunk) for chunk in response.iter_raw())
        times_ms.append((now() - started) * 1000)
    body = client.get(path, params=params)
    raw = len(body.content)
    payload = body.json()
    if isinstance(payload, list):
        items = len(payload)
    else:
        items = len(payload["items"]) if "items" in payload else 1
    stats = summarize_ms(times_ms)
    return {
        "request": name,
        "items": items,
        "p50_ms": stats["p50"],
        "p99_ms": stats["p99"],
        "wire_kb": round(wire / 1024, 1),
        "json_kb": round(raw / 1024, 1),
        "encoding": body.headers.get("content-encoding", "identity"),
        "count": stats["count"],
    }


def deep_cursor(db: BenchDB, items: int) -> str:
    """Return a cursor 95 % of the way into the catalog (OFFSET here only)."""
    offset = int(items * 0.95)
    return psql(
        db, f"SELECT id FROM recommender_item ORDER BY id OFFSET {offset} LIMIT 1"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="recsite_catalog")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument(
        "--reuse", action="store_true", help="Measure the existing database."
    )
    parser.add_argument(
        "--full", action="store_true", help="Also stream the full snapshot once."
    )
    args = parser.parse_args()
    db = BenchDB(args.db)
    seed_secs = None
    if not args.reuse or catalog_size(db) < args.items:
        print(f"seeding {args.items:,} items into {db.name}…", flush=True)
        seed_secs = round(seed(db, items=args.items, users=args.users), 1)
        print(f"seed_demo --items {args.items}: {seed_secs} s", flush=True)
    items = catalog_size(db)
    server = start_recsite(db, free_port())
    rows: list[dict[str, Any]] = []
    try:
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(
            base_url=base, headers={"Accept-Encoding": "gzip"}, timeout=600
        ) as client:
            client.get("/api/items/").raise_for_status()  # warm up
            cursor = deep_cursor(db, items)
            cases = [
                # What the machine's load alone costs a request: no catalog read.
                ("baseline: categories", "/api/categories/", {}),
                ("first page", "/api/items/", {}),
                ("page 95 % in (keyset)", "/api/items/", {"cursor": cursor}),
                ("500 items", "/api/items/", {"limit": 500}),
                ("category", "/api/items/", {"category": "electronics"}),
                ("price 20-25", "/api/items/", {"min_price": 20, "max_price": 25}),
                ("search: headphones", "/api/items/", {"q": "headphones"}),
                ("search: zephyr kettle", "/api/items/", {"q": "zephyr kettle"}),
                ("search: headph (prefix)", "/api/items/", {"q": "headph"}),
                (
                    "search + category",
                    "/api/items/",
                    {"q": "wireless", "category": "electronics"},
                ),
                ("search: rare line", "/api/items/", {"q": "nimbus 7 organic"}),
                ("one item", "/api/items/1/", {}),
            ]
            for name, path, params in cases:
                rows.append(measure(client, name, path, params, args.repeats))
                print(rows[-1], flush=True)
            if args.full:
                rows.append(measure(client, "full stream", "/api/items/all/", {}, 1))
    finally:
        server.stop()
    print()
    print(f"catalog: {items:,} items; seed: {seed_secs} s")
    print_table(
        "GET over loopback, one server process, gzip accepted",
        rows,
        ["request", "items", "p50_ms", "p99_ms", "wire_kb", "json_kb", "encoding"],
    )
    path = write_json(
        "catalog",
        {
            "machine": machine_info(),
            "items": items,
            "seed_secs": seed_secs,
            "requests": rows,
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
