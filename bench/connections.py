"""Connect time and server memory per idle /ws/sync/ connection.

For each size a fresh server is started, warmed with one connection, then N
sockets are opened by the load-client processes (at most ``--concurrency``
handshakes in flight in all). Connect time runs from the first connect to
the last ``hello``; memory per connection is the growth of the server's RSS
over N, measured 3 s after the last ``hello``. Same for the bare bound.

    .venv/bin/python bench/connections.py --sizes 1000,5000,10000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.database import BenchDB
from bench.fanout import Pool
from bench.figures import print_table, ratio, write_json
from bench.procfs import raise_nofile
from bench.servers import Server, start_bare, start_recsite
from tests.support.loadclient import ws_connect
from tests.support.servers import free_port


async def _one(port: int) -> None:
    client = await ws_connect(port, "/ws/sync/")
    await asyncio.sleep(0.3)
    client.abort()


def measure(
    server: Server, n: int, *, workers: int, concurrency: int
) -> dict[str, Any]:
    asyncio.run(_one(server.port))  # warm-up: imports, first DB and Redis connections
    time.sleep(1.0)
    rss0 = server.rss_kib()
    cpu0 = server.cpu_secs()
    pool = Pool(
        server.port,
        n,
        workers=workers,
        concurrency=concurrency,
        timeout_secs=60 + n / 50,
    )
    try:
        connect_secs = pool.connect_secs
        cpu = server.cpu_secs() - cpu0
        time.sleep(3.0)
        rss1 = server.rss_kib()
        connected = pool.connected
    finally:
        pool.close()
    return {
        "sockets": n,
        "connected": connected,
        "errors": pool.errors,
        "connect_secs": round(connect_secs, 3),
        "connects_per_sec": round(connected / max(1e-9, connect_secs), 1),
        "server_cpu_ms_per_connect": round(1000 * cpu / max(1, connected), 3),
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "kib_per_connection": round((rss1 - rss0) / max(1, connected), 2),
    }


def run(
    *, sizes: list[int], workers: int, concurrency: int, db: BenchDB, fresh_db: bool
) -> dict[str, Any]:
    raise_nofile()
    db.prepare(fresh=fresh_db)
    results = []
    rows = []
    for n in sizes:
        pair: dict[str, Any] = {}
        for kind in ("bare", "recsite"):
            port = free_port()
            print(f"connections N={n} {kind}…", flush=True)
            server = start_bare(port) if kind == "bare" else start_recsite(db, port)
            try:
                pair[kind] = measure(
                    server, n, workers=workers, concurrency=concurrency
                )
            except Exception as exc:
                print(f"  {kind} N={n} failed: {exc!r}")
                pair[kind] = {"error": repr(exc)}
            finally:
                server.stop()
        results.append({"sockets": n, **pair})
        bare = pair.get("bare", {})
        for kind in ("bare", "recsite"):
            r = pair.get(kind, {})
            if "error" in r:
                rows.append({"N": n, "server": kind, "connected": "ERROR"})
                continue
            rows.append(
                {
                    "N": n,
                    "server": kind,
                    "connected": r["connected"],
                    "errors": sum(r["errors"].values()),
                    "connect s": r["connect_secs"],
                    "x bare": ratio(r["connect_secs"], bare.get("connect_secs")),
                    "KiB/conn": r["kib_per_connection"],
                    "x bare mem": ratio(
                        r["kib_per_connection"], bare.get("kib_per_connection")
                    ),
                    "cpu ms/connect": r["server_cpu_ms_per_connect"],
                }
            )
    print_table(
        "connections: connect time and memory per idle /ws/sync/ socket",
        rows,
        [
            "N",
            "server",
            "connected",
            "errors",
            "connect s",
            "x bare",
            "KiB/conn",
            "x bare mem",
            "cpu ms/connect",
        ],
    )
    return {
        "sizes": sizes,
        "workers": workers,
        "concurrency": concurrency,
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--concurrency", type=int, default=200, help="Handshakes in flight in all."
    )
    parser.add_argument("--db", default="recsite_bench")
    parser.add_argument("--reuse-db", action="store_true")
    args = parser.parse_args()
    data = run(
        sizes=[int(s) for s in args.sizes.split(",") if s],
        workers=args.workers,
        concurrency=args.concurrency,
        db=BenchDB(args.db),
        fresh_db=not args.reuse_db,
    )
    write_json("connections", data)


if __name__ == "__main__":
    main()
