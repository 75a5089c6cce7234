"""Shaped fan-out: N /ws/sync/ sockets, each subscribed to one of the categories.

One recsite server, one run, two passes over the same committer (a Django
process saving catalog items, one transaction each, with the send time in
the title; bench/fanout.py's machinery):

- *unfiltered*: N sockets without a subscription (today's fan-out: every
  change reaches every socket);
- *shaped*: N sockets, socket i subscribed to ``{"category": ids[i % 12]}``;
- *dashboards*: the same, each shape also listing 20 ``also_ids`` of its own
  (as a dashboard lists the items of its panels), ids the committer never
  saves: the deliveries must be the *shaped* pass's, and the CPU per change
  shows whether sockets with distinct ``also_ids`` still share one verdict.

For every change it reports how many sockets received it, whether every
receiver's category is the change's (no socket outside the shape got it)
and whether every subscriber of that category got it (none lost), the time
from ``save()`` to the last receiver, and the server's CPU per delivery and
per change.

    .venv/bin/python bench/shapes.py --sockets 5000 --changes 12
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.database import BenchDB
from bench.figures import print_table, ratio, write_json
from bench.loadpool import WorkerPool
from bench.procfs import CpuMeter, now, raise_nofile
from bench.servers import Server, start_recsite
from tests.support.loadclient import WSClient, connect_many
from tests.support.servers import free_port

_SEQ = re.compile(rb'"seq":(\d+)')
_SENT = re.compile(rb"bench t=([0-9.]+)")
_CATEGORY = re.compile(rb'"category_id":(\d+)')


#: ``also_ids`` of the dashboards pass come from here: items past the first
#: 500 (the committer saves among those), within a 10,000-item catalog.
ALSO_IDS_RANGE = range(2_000, 10_000)
ALSO_IDS_PER_SOCKET = 20


def shaped_worker(
    conn: Any,
    port: int,
    count: int,
    categories: list[int] | None,
    concurrency: int,
    also_ids: bool = False,
) -> None:
    """Hold ``count`` sockets (subscribed round-robin to ``categories``, if any)."""
    raise_nofile()
    asyncio.run(_worker(conn, port, count, categories, concurrency, also_ids))


async def _worker(
    conn: Any,
    port: int,
    count: int,
    categories: list[int] | None,
    concurrency: int,
    also_ids: bool,
) -> None:
    # (arrival time, socket's category or -1, payload) of every change frame.
    arrivals: list[tuple[float, int, bytes]] = []
    ready = 0
    all_ready = asyncio.get_running_loop().create_future()
    wanted = "subscribed" if categories else "hello"
    numbering = iter(range(count))

    def on_text(client: WSClient, t: float, data: bytes) -> None:
        nonlocal ready
        if b'"type":"change"' in data[:20]:
            arrivals.append((t, client.state.get("category", -1), data))
            return
        if data.startswith(b'{"type":"hello"') and categories:
            category = categories[next(numbering) % len(categories)]
            client.state["category"] = category
            shape: dict[str, Any] = {"model": "item", "category": category}
            if also_ids:
                shape["also_ids"] = random.sample(ALSO_IDS_RANGE, ALSO_IDS_PER_SOCKET)
            client.send_text(json.dumps({"type": "subscribe", "shape": shape}))
        if data.startswith(b'{"type":"%s"' % wanted.encode()):
            ready += 1
            if ready >= count and not all_ready.done():
                all_ready.set_result(None)

    clients, errors = await connect_many(
        port, "/ws/sync/", count, concurrency=concurrency, on_text=on_text
    )
    if len(clients) == count:
        try:
            await asyncio.wait_for(all_ready, 60)
        except TimeoutError:
            errors[f"no {wanted} in 60 s"] += count - ready
    per_category = Counter(cl.state.get("category", -1) for cl in clients)
    conn.send(
        {
            "connected": len(clients),
            "errors": dict(errors),
            "per_category": per_category,
        }
    )
    loop = asyncio.get_running_loop()
    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd[0] == "reset":
            arrivals.clear()
            conn.send("ok")
        elif cmd[0] == "collect":
            expected, timeout_secs = cmd[1], cmd[2]
            deadline = now() + timeout_secs
            while len(arrivals) < expected and now() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # anything that should not come, would
            rows = []
            for t, category, data in arrivals:
                seq = int(_SEQ.search(data).group(1))
                sent = _SENT.search(data)
                item_category = _CATEGORY.search(data)
                rows.append(
                    (
                        seq,
                        (t - float(sent.group(1))) * 1000 if sent else np.nan,
                        category,
                        int(item_category.group(1)) if item_category else -1,
                    )
                )
            conn.send(rows)
        elif cmd[0] == "stop":
            for cl in clients:
                cl.abort()
            await asyncio.sleep(0.2)
            conn.send("ok")
            return


def categories_seen(server: Server) -> tuple[list[int], int]:
    """Return the category ids of the first 500 items (those the committer saves)."""
    body = httpx.get(f"{server.http_url}/api/items/?limit=500", timeout=30).json()
    ids = Counter(item["category_id"] for item in body["items"])
    return sorted(ids), len(body["items"])


def measure(
    server: Server,
    db: BenchDB,
    *,
    sockets: int,
    categories: list[int] | None,
    changes: int,
    interval_secs: float,
    workers: int,
    also_ids: bool = False,
) -> dict[str, Any]:
    """Broadcast ``changes`` item saves to ``sockets`` sockets; return the figures."""
    shares = [
        sockets // workers + (1 if i < sockets % workers else 0) for i in range(workers)
    ]
    pool = WorkerPool(
        shaped_worker,
        [
            (server.port, share, categories, max(1, 100 // workers), also_ids)
            for share in shares
        ],
        hello_secs=90 + sockets / 20,
    )
    committer = db.committer()
    try:
        per_category: Counter = Counter()
        for hello in pool.hello:
            per_category.update(hello["per_category"])
        idle = CpuMeter(server.pid)
        time.sleep(2.0)
        idle_cpu = idle.stop()
        for _ in range(2):  # warm-up
            committer.save(1)
            time.sleep(interval_secs)
        pool.ask("reset")
        meter = CpuMeter(server.pid)
        for _ in range(changes):
            committer.save(1)
            time.sleep(interval_secs)
        cpu = meter.stop()
        expected = changes * (
            pool.connected if categories is None else pool.connected / len(categories)
        )
        parts = pool.ask("collect", int(expected * 0.9), 10.0 + sockets / 500)
    finally:
        committer.close()
        pool.close()
    rows = np.array([row for part in parts for row in part], dtype=np.float64)
    rows = rows.reshape(-1, 4)
    seqs, lat, sock_cat, item_cat = rows.T
    outside = int(((sock_cat != -1) & (sock_cat != item_cat)).sum())
    lost = 0
    last_ms = []
    for seq in np.unique(seqs):
        mask = seqs == seq
        category = int(item_cat[mask][0])
        should = pool.connected if categories is None else per_category[category]
        lost += should - int(mask.sum())
        last_ms.append(float(np.nanmax(lat[mask])))
    deliveries = int(rows.shape[0])
    net_cpu = (
        cpu["server_cpu_secs"]
        - idle_cpu["server_cpu_secs"] / idle_cpu["wall_secs"] * cpu["wall_secs"]
    )
    return {
        "sockets": pool.connected,
        "connect_errors": [h["errors"] for h in pool.hello if h["errors"]],
        "changes": changes,
        "changes_seen": len(last_ms),
        "deliveries": deliveries,
        "deliveries_per_change": round(deliveries / max(1, len(last_ms)), 1),
        "outside_shape": outside,
        "lost": lost,
        "time_to_last_ms": {
            "median": round(float(np.median(last_ms)), 2) if last_ms else None,
            "max": round(float(np.max(last_ms)), 2) if last_ms else None,
        },
        "server_net_cpu_ms_per_change": round(1e3 * net_cpu / max(1, changes), 2),
        "server_net_cpu_us_per_delivery": round(1e6 * net_cpu / max(1, deliveries), 2),
        "cpu": cpu,
    }


def run(
    *, sockets: int, changes: int, workers: int, db: BenchDB, fresh_db: bool
) -> dict[str, Any]:
    raise_nofile()
    db.prepare(fresh=fresh_db)
    port = free_port()
    server = start_recsite(db, port, SYNC_HEARTBEAT_SECS="3600")
    try:
        categories, seen = categories_seen(server)
        print(f"{len(categories)} categories among the first {seen} items", flush=True)
        interval = max(1.0, sockets / 2000)
        result: dict[str, Any] = {"categories": categories}
        for name, shape, also in (
            ("unfiltered", None, False),
            ("shaped", categories, False),
            ("dashboards", categories, True),
        ):
            print(f"shapes N={sockets} {name}: {changes} changes…", flush=True)
            result[name] = measure(
                server,
                db,
                sockets=sockets,
                categories=shape,
                changes=changes,
                interval_secs=interval,
                workers=workers,
                also_ids=also,
            )
    finally:
        server.stop()
    base = result["unfiltered"]
    rows = [
        {
            "pass": name,
            "sockets": r["sockets"],
            "per change": r["deliveries_per_change"],
            "outside": r["outside_shape"],
            "lost": r["lost"],
            "to-last ms": r["time_to_last_ms"]["median"],
            "x unfiltered": ratio(
                r["time_to_last_ms"]["median"], base["time_to_last_ms"]["median"]
            ),
            "cpu ms/change": r["server_net_cpu_ms_per_change"],
            "µs/delivery": r["server_net_cpu_us_per_delivery"],
        }
        for name, r in ((n, result[n]) for n in ("unfiltered", "shaped", "dashboards"))
    ]
    print_table(
        f"shapes: one category's change → its subscribers (N={sockets})",
        rows,
        list(rows[0]),
    )
    return {"sockets": sockets, "changes": changes, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=5000, help="Sockets per pass.")
    parser.add_argument("--changes", type=int, default=12, help="Changes per pass.")
    parser.add_argument("--workers", type=int, default=2, help="Load-client processes.")
    parser.add_argument(
        "--db", default="recsite_bench", help="PostgreSQL database of the bench."
    )
    parser.add_argument(
        "--reuse-db", action="store_true", help="Do not recreate the database."
    )
    args = parser.parse_args()
    data = run(
        sockets=args.sockets,
        changes=args.changes,
        workers=args.workers,
        db=BenchDB(args.db),
        fresh_db=not args.reuse_db,
    )
    write_json("shapes", data)


if __name__ == "__main__":
    main()
