"""A real shop's catalog: seed a million items, then time the catalog API.

    .venv/bin/python bench/catalog.py                 # seed 1,000,000 items, measure
    .venv/bin/python bench/catalog.py --reuse         # measure the seeded database
    .venv/bin/python bench/catalog.py --items 100000 --full

Prints the seed time (``seed_demo`` alone, after migrate), then for each request
the time over HTTP on loopback (p50/p99 of ``--repeats`` requests to one
``manage.py serve`` process, gzip accepted) and the bytes on the wire: the
first page, a page deep in the catalog (keyset, so no slower), a category page,
a price range, common, rare and absent words with and without a category and
a cursor, and, with ``--full``, the streamed full snapshot. Then the plan each
search took (``--explain``: EXPLAIN ANALYZE of the query that read it) and the
shopper's first catalog card after logging in, in headless Chromium
(``--browser N`` runs; needs Playwright and /usr/bin/chromium). Targets
(issue 13): first page ≤ 50 ms and ≤ 100 KB, search by a word ≤ 100 ms, first
card ≤ 1.5 s after login.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
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


#: (name, params) of the searches timed and explained: common, rare and
#: absent words, alone, with a category and after a cursor 95 % in.
SEARCHES = [
    ("search: headphones (common)", {"q": "headphones"}),
    ("search: headph (prefix)", {"q": "headph"}),
    ("search: zephyr kettle (two words)", {"q": "zephyr kettle"}),
    ("search: nimbus 7 organic (rare)", {"q": "nimbus 7 organic"}),
    ("search: xylophonez (absent)", {"q": "xylophonez"}),
    ("search + category: wireless", {"q": "wireless", "category": "electronics"}),
    ("search + category: rare", {"q": "nimbus 7 organic", "category": "grocery"}),
    ("search + category: common elsewhere", {"q": "headphones", "category": "books"}),
    ("search + cursor: headphones", {"q": "headphones", "cursor": "CURSOR"}),
    ("search + cursor: rare", {"q": "nimbus 7 organic", "cursor": "CURSOR"}),
    ("search + cursor: absent", {"q": "xylophonez", "cursor": "CURSOR"}),
]

_EXPLAIN = """
import json, sys
import django
django.setup()
from recommender.selectors import items as catalog
out = []
for name, params in json.loads(sys.argv[1]):
    category = params.get("category")
    f = catalog.ItemFilter(
        q=params["q"],
        category_id=catalog.category_resolve(value=category) if category else None,
    )
    after = int(params["cursor"]) if "cursor" in params else None
    out.append({"request": name, **catalog.search_explain(filters=f, after=after)})
print(json.dumps(out))
"""


def explain(db: BenchDB, cases: list[tuple[str, dict[str, Any]]]) -> list[dict]:
    """Return the plan each search takes and EXPLAIN ANALYZE of its query."""
    out = subprocess.run(
        [PY, "-c", _EXPLAIN, json.dumps(cases)],
        cwd=ROOT,
        env={**recsite_env(db), "DJANGO_SETTINGS_MODULE": "recsite.settings"},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def accounts_ensure(db: BenchDB) -> None:
    """Create the demo logins (``shopper`` / ``recsite-shopper``) if missing."""
    subprocess.run(
        [
            PY,
            "manage.py",
            "shell",
            "-c",
            "from recommender.services.demo import "
            "demo_accounts_ensure; demo_accounts_ensure()",
        ],
        cwd=ROOT,
        env=recsite_env(db),
        check=True,
        timeout=120,
    )


def _wait_idle(server: Any, *, quiet_secs: float = 1.0, limit_secs: float = 60) -> None:
    """Wait until the server process has used < 5 % of a core for ``quiet_secs``."""
    deadline = now() + limit_secs
    while now() < deadline:
        before = server.cpu_secs()
        time.sleep(quiet_secs)
        if server.cpu_secs() - before < 0.05 * quiet_secs:
            return


def first_card_after_login(server: Any, runs: int) -> list[dict[str, float]]:
    """Time login → the first catalog card in headless Chromium, ``runs`` times.

    Each run is a fresh browser context (no cache, no cookies): the shopper
    logs in through Django's form and lands on the dashboard. One unmeasured
    login first warms the server (its engine cache reads the catalog once per
    process), and each run starts when the server is idle again: a shopper
    logging in to a running shop. Returns per run ``total_ms`` (submit →
    first card), ``login_ms`` (the login POST, password hashing included) and
    ``dashboard_ms`` (request of ``/`` → first card).
    """
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{server.port}"
    chromium = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
    figures: list[dict[str, float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            for run in range(runs + 1):
                _wait_idle(server)
                context = browser.new_context(viewport={"width": 1280, "height": 860})
                page = context.new_page()
                page.goto(f"{base}/accounts/login/?next=/")
                page.fill("#id_username", "shopper")
                page.fill("#id_password", "recsite-shopper")
                dashboard_at: list[float] = []

                def seen(request: Any, at: list[float] = dashboard_at) -> None:
                    if request.url == f"{base}/":
                        at.append(now())

                page.on("request", seen)
                started = now()
                page.click("form button[type=submit], form input[type=submit]")
                page.wait_for_selector(
                    "[data-testid='catalog'] [data-item-id]", timeout=60_000
                )
                done = now()
                context.close()
                if run == 0:
                    continue  # the warm-up
                figures.append(
                    {
                        "total_ms": round((done - started) * 1000, 1),
                        "login_ms": round((dashboard_at[0] - started) * 1000, 1),
                        "dashboard_ms": round((done - dashboard_at[0]) * 1000, 1),
                    }
                )
        finally:
            browser.close()
    return figures


def _with_cursor(params: dict[str, Any], cursor: str) -> dict[str, Any]:
    return {k: (cursor if v == "CURSOR" else v) for k, v in params.items()}


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
    parser.add_argument(
        "--explain", action="store_true", help="Print the plan of every search."
    )
    parser.add_argument(
        "--browser",
        type=int,
        default=5,
        metavar="N",
        help="Runs of login → first catalog card in Chromium (0: none).",
    )
    args = parser.parse_args()
    db = BenchDB(args.db)
    seed_secs = None
    if not args.reuse or catalog_size(db) < args.items:
        print(f"seeding {args.items:,} items into {db.name}…", flush=True)
        seed_secs = round(seed(db, items=args.items, users=args.users), 1)
        print(f"seed_demo --items {args.items}: {seed_secs} s", flush=True)
    items = catalog_size(db)
    if args.browser:
        accounts_ensure(db)
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
                *(
                    (name, "/api/items/", _with_cursor(params, cursor))
                    for name, params in SEARCHES
                ),
                (
                    "ids: 20 items",
                    "/api/items/",
                    {"ids": ",".join(map(str, range(1, 40, 2)))},
                ),
                ("one item", "/api/items/1/", {}),
            ]
            for name, path, params in cases:
                rows.append(measure(client, name, path, params, args.repeats))
                print(rows[-1], flush=True)
            if args.full:
                rows.append(measure(client, "full stream", "/api/items/all/", {}, 1))
            first_card = (
                first_card_after_login(server, args.browser) if args.browser else []
            )
    finally:
        server.stop()
    plans = []
    if args.explain:
        plans = explain(
            db, [(name, _with_cursor(params, cursor)) for name, params in SEARCHES]
        )
        for plan in plans:
            print(f"\n== {plan['request']}: {plan['plan']}")
            print("\n".join(plan["explain"]))
    print()
    print(f"catalog: {items:,} items; seed: {seed_secs} s")
    if first_card:
        print_table(
            "login → first catalog card, headless Chromium, server idle before each",
            first_card,
            ["total_ms", "login_ms", "dashboard_ms"],
        )
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
            "first_card_after_login": first_card,
            "search_plans": [{k: p[k] for k in ("request", "plan")} for p in plans],
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
