"""Catalog change → every /ws/sync/ socket: time to the last socket, loss, CPU.

N sockets are held by load-client processes. A long-lived Django process
saves one item per change (one committed transaction, broadcast through
Redis after commit) with ``time.monotonic()`` taken just before ``save()``
written into the title; each client takes the arrival time of every
``change`` frame. The same load runs against bench/bare_server.py, where a
control socket asks for each broadcast, in the same run.

Also reports bytes on the wire per delivery with and without
permessage-deflate (client offering it), and whether recsite negotiates it.

    .venv/bin/python bench/fanout.py --sizes 1000,5000 --changes 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

import numpy as np

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.database import BenchDB
from bench.figures import print_table, ratio, summarize_ms, write_json
from bench.loadpool import WorkerPool
from bench.procfs import CpuMeter, now, raise_nofile
from bench.profiling import Profiler, print_profile
from bench.servers import Server, start_bare, start_recsite
from tests.support.loadclient import WSClient, connect_many
from tests.support.servers import free_port

_SEQ = re.compile(rb'"seq":(\d+)')
_SENT = re.compile(rb"bench t=([0-9.]+)")


# --- load client process ----------------------------------------------------------


def sync_worker(
    conn: Any, port: int, count: int, compression: bool, concurrency: int
) -> None:
    """Hold ``count`` /ws/sync/ sockets and answer the parent's commands."""
    raise_nofile()
    asyncio.run(_sync_worker(conn, port, count, compression, concurrency))


async def _sync_worker(
    conn: Any, port: int, count: int, compression: bool, concurrency: int
) -> None:
    arrivals: list[tuple[float, bytes]] = []
    hellos = 0
    all_hello = asyncio.get_running_loop().create_future()

    def on_text(client: WSClient, t: float, data: bytes) -> None:
        nonlocal hellos
        if b'"type":"change"' in data[:20]:
            arrivals.append((t, data))
        elif data.startswith(b'{"type":"hello"'):
            hellos += 1
            client.state["hello_t"] = t
            if hellos >= count and not all_hello.done():
                all_hello.set_result(None)

    t_start = now()
    clients, errors = await connect_many(
        port,
        "/ws/sync/",
        count,
        concurrency=concurrency,
        compression=compression,
        on_text=on_text,
    )
    if len(clients) == count:
        try:
            await asyncio.wait_for(all_hello, 30)
        except TimeoutError:
            errors["no hello in 30 s"] += count - hellos
    hello_ts = [cl.state["hello_t"] for cl in clients if "hello_t" in cl.state]
    conn.send(
        {
            "connected": len(clients),
            "hellos": len(hello_ts),
            "errors": dict(errors),
            "t_start": t_start,
            "t_end": max(hello_ts) if hello_ts else now(),
            "extensions": clients[0].extensions if clients else "",
        }
    )
    loop = asyncio.get_running_loop()
    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd[0] == "reset":
            arrivals.clear()
            for cl in clients:
                cl.bytes_in = 0
            conn.send("ok")
        elif cmd[0] == "collect":
            expected, timeout_secs = cmd[1], cmd[2]
            deadline = now() + timeout_secs
            while len(arrivals) < expected * len(clients) and now() < deadline:
                await asyncio.sleep(0.05)
            seqs = np.empty(len(arrivals), dtype=np.int64)
            lat_ms = np.empty(len(arrivals), dtype=np.float64)
            for i, (t, data) in enumerate(arrivals):
                seqs[i] = int(_SEQ.search(data).group(1))
                m = _SENT.search(data)
                lat_ms[i] = (t - float(m.group(1))) * 1000 if m else np.nan
            conn.send(
                {
                    "seqs": seqs,
                    "lat_ms": lat_ms,
                    "bytes_in": sum(cl.bytes_in for cl in clients),
                    "sockets": len(clients),
                    "closed": sum(1 for cl in clients if cl.closed.done()),
                }
            )
        elif cmd[0] == "stop":
            for cl in clients:
                cl.abort()
            await asyncio.sleep(0.2)
            conn.send("ok")
            return


class Pool(WorkerPool):
    """Load-client processes holding N /ws/sync/ sockets between them."""

    def __init__(
        self,
        port: int,
        total: int,
        *,
        workers: int,
        compression: bool = False,
        concurrency: int = 200,
        timeout_secs: float = 180,
    ) -> None:
        shares = [
            total // workers + (1 if i < total % workers else 0) for i in range(workers)
        ]
        per_worker = max(1, concurrency // workers)
        super().__init__(
            sync_worker,
            [(port, share, compression, per_worker) for share in shares],
            hello_secs=timeout_secs,
        )

    @property
    def connect_secs(self) -> float:
        return max(h["t_end"] for h in self.hello) - min(
            h["t_start"] for h in self.hello
        )

    @property
    def errors(self) -> dict[str, int]:
        merged: dict[str, int] = {}
        for h in self.hello:
            for k, v in h["errors"].items():
                merged[k] = merged.get(k, 0) + v
        return merged


# --- triggers -----------------------------------------------------------------------


class BareTrigger:
    def __init__(self, port: int) -> None:
        from websockets.sync.client import connect

        self.ws = connect(
            f"ws://127.0.0.1:{port}/ws/control/", compression=None
        ).__enter__()
        self.turn = 0

    def fire(self) -> float:
        self.turn += 1
        t = now()
        self.ws.send(
            json.dumps({"type": "broadcast", "title": f"bench t={t:.6f} #{self.turn}"})
        )
        return t

    def close(self) -> None:
        self.ws.close()


class RecsiteTrigger:
    def __init__(self, db: BenchDB) -> None:
        self.committer = db.committer()

    def fire(self) -> float:
        return self.committer.save(1)[0]

    def close(self) -> None:
        self.committer.close()


# --- one measurement ------------------------------------------------------------------


def measure(
    server: Server,
    trigger: Any,
    *,
    sockets: int,
    changes: int,
    interval_secs: float,
    workers: int,
    compression: bool = False,
    profile_name: str | None = None,
) -> dict[str, Any]:
    """Run ``changes`` broadcasts to ``sockets`` sockets on ``server``."""
    pool = Pool(
        server.port,
        sockets,
        workers=workers,
        compression=compression,
        concurrency=100,
        timeout_secs=60 + sockets / 20,
    )
    try:
        result: dict[str, Any] = {
            "sockets": sockets,
            "connected": pool.connected,
            "connect_errors": pool.errors,
            "extensions": pool.hello[0]["extensions"],
            "rss_kib": server.rss_kib(),
        }
        if pool.connected < sockets:
            print(
                f"  {server.name}: only {pool.connected}/{sockets} connected: {pool.errors}"
            )
        idle = CpuMeter(server.pid)
        time.sleep(2.0)
        idle_cpu = idle.stop()
        for _ in range(2):  # warm-up: first broadcast pays for imports and caches
            trigger.fire()
            time.sleep(interval_secs)
        pool.ask("reset")
        profiler = (
            Profiler(server.pid, profile_name, changes * interval_secs)
            if profile_name
            else None
        )
        meter = CpuMeter(server.pid)
        sent = []
        for _ in range(changes):
            sent.append(trigger.fire())
            time.sleep(interval_secs)
        cpu = meter.stop()
        parts = pool.ask("collect", changes, 10.0 + sockets / 500, timeout_secs=120)
        prof = profiler.finish() if profiler else None
    finally:
        pool.close()
    seqs = np.concatenate([p["seqs"] for p in parts])
    lat = np.concatenate([p["lat_ms"] for p in parts])
    per_change = []
    for seq in np.unique(seqs):
        mask = seqs == seq
        per_change.append(
            {
                "seq": int(seq),
                "received": int(mask.sum()),
                "last_ms": float(np.nanmax(lat[mask])),
            }
        )
    deliveries = int(lat.size)
    expected = changes * pool.connected
    last = [pc["last_ms"] for pc in per_change]
    net_cpu = (
        cpu["server_cpu_secs"]
        - idle_cpu["server_cpu_secs"] / idle_cpu["wall_secs"] * cpu["wall_secs"]
    )
    result.update(
        {
            "changes": changes,
            "deliveries": deliveries,
            "lost": expected - deliveries,
            "latency_ms": summarize_ms(lat[~np.isnan(lat)]),
            "time_to_last_ms": {
                "median": round(float(np.median(last)), 2) if last else None,
                "max": round(float(np.max(last)), 2) if last else None,
                "per_change": [round(x, 2) for x in last],
            },
            "cpu": cpu,
            "idle_cpu": idle_cpu,
            "server_cpu_us_per_delivery": round(
                1e6 * cpu["server_cpu_secs"] / max(1, deliveries), 2
            ),
            "server_net_cpu_us_per_delivery": round(
                1e6 * net_cpu / max(1, deliveries), 2
            ),
            "wire_bytes_per_delivery": round(
                sum(p["bytes_in"] for p in parts) / max(1, deliveries), 1
            ),
            "closed_during_run": sum(p["closed"] for p in parts),
            "profile": prof,
        }
    )
    return result


def run(
    *,
    sizes: list[int],
    changes: int,
    workers: int,
    db: BenchDB,
    fresh_db: bool,
    compression_size: int,
    profile: bool,
) -> dict[str, Any]:
    raise_nofile()
    db.prepare(fresh=fresh_db)
    rows = []
    results = []
    # Heartbeats are a constant background on /ws/sync/; stretch them so the
    # CPU and the arrivals measured are those of the broadcasts.
    extra = {"SYNC_HEARTBEAT_SECS": "3600"}
    for n in sizes:
        interval = max(1.0, n / 2000)
        pair = {}
        for kind in ("bare", "recsite"):
            port = free_port()
            print(
                f"fanout N={n} {kind}: {changes} changes every {interval:.1f} s…",
                flush=True,
            )
            server = (
                start_bare(port) if kind == "bare" else start_recsite(db, port, **extra)
            )
            trigger = None
            try:
                trigger = BareTrigger(port) if kind == "bare" else RecsiteTrigger(db)
                pair[kind] = measure(
                    server,
                    trigger,
                    sockets=n,
                    changes=changes,
                    interval_secs=interval,
                    workers=workers,
                    profile_name=f"fanout-{kind}-{n}"
                    if profile and kind == "recsite"
                    else None,
                )
            except Exception as exc:
                print(f"  {kind} N={n} failed: {exc!r}")
                pair[kind] = {"error": repr(exc)}
            finally:
                if trigger is not None:
                    trigger.close()
                server.stop()
        results.append({"sockets": n, **pair})
        rows.extend(_rows(n, pair))
        if pair.get("recsite", {}).get("profile"):
            print_profile(f"recsite fanout N={n} profile", pair["recsite"]["profile"])
    print_table(
        "fanout: catalog change → every /ws/sync/ socket",
        rows,
        [
            "N",
            "server",
            "connected",
            "lost",
            "p50 ms",
            "p99 ms",
            "to-last ms",
            "x bare",
            "µs/delivery",
            "x bare cpu",
        ],
    )
    comp = (
        compression_pass(db, compression_size, changes, workers)
        if compression_size
        else None
    )
    return {
        "sizes": sizes,
        "changes": changes,
        "workers": workers,
        "results": results,
        "compression": comp,
    }


def _rows(n: int, pair: dict[str, Any]) -> list[dict[str, Any]]:
    bare = pair.get("bare", {})
    rows = []
    for kind in ("bare", "recsite"):
        r = pair.get(kind, {})
        if "error" in r or not r:
            rows.append({"N": n, "server": kind, "connected": "ERROR"})
            continue
        rows.append(
            {
                "N": n,
                "server": kind,
                "connected": r["connected"],
                "lost": r["lost"],
                "p50 ms": r["latency_ms"]["p50"],
                "p99 ms": r["latency_ms"]["p99"],
                "to-last ms": r["time_to_last_ms"]["median"],
                "x bare": ratio(
                    r["time_to_last_ms"]["median"],
                    bare.get("time_to_last_ms", {}).get("median"),
                ),
                "µs/delivery": r["server_cpu_us_per_delivery"],
                "x bare cpu": ratio(
                    r["server_cpu_us_per_delivery"],
                    bare.get("server_cpu_us_per_delivery"),
                ),
            }
        )
    return rows


def compression_pass(db: BenchDB, n: int, changes: int, workers: int) -> dict[str, Any]:
    """Bytes on the wire per delivery with a client offering permessage-deflate."""
    out: dict[str, Any] = {"sockets": n}
    rows = []
    plans = [
        ("bare", False, False),
        ("bare", True, True),
        ("recsite", False, False),
        ("recsite", True, False),
    ]
    for kind, offer, server_deflate in plans:
        port = free_port()
        server = (
            start_bare(port, compression=server_deflate)
            if kind == "bare"
            else start_recsite(db, port, SYNC_HEARTBEAT_SECS="3600")
        )
        trigger = None
        try:
            trigger = BareTrigger(port) if kind == "bare" else RecsiteTrigger(db)
            r = measure(
                server,
                trigger,
                sockets=n,
                changes=changes,
                interval_secs=1.0,
                workers=workers,
                compression=offer,
            )
        finally:
            if trigger is not None:
                trigger.close()
            server.stop()
        key = f"{kind}-{'offer' if offer else 'plain'}"
        out[key] = {
            "negotiated": r["extensions"] or None,
            "wire_bytes_per_delivery": r["wire_bytes_per_delivery"],
            "server_cpu_us_per_delivery": r["server_cpu_us_per_delivery"],
            "time_to_last_ms": r["time_to_last_ms"]["median"],
            "lost": r["lost"],
        }
        rows.append({"server": kind, "client offers deflate": offer, **out[key]})
    print_table(
        f"permessage-deflate at N={n} (bytes are TCP payload received per delivery, incl. frame header)",
        rows,
        [
            "server",
            "client offers deflate",
            "negotiated",
            "wire_bytes_per_delivery",
            "server_cpu_us_per_delivery",
            "time_to_last_ms",
        ],
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000,5000", help="Socket counts, comma-separated."
    )
    parser.add_argument(
        "--changes", type=int, default=8, help="Broadcasts measured per size."
    )
    parser.add_argument("--workers", type=int, default=2, help="Load-client processes.")
    parser.add_argument(
        "--db", default="recsite_bench", help="PostgreSQL database of the bench."
    )
    parser.add_argument(
        "--reuse-db", action="store_true", help="Do not recreate the database."
    )
    parser.add_argument(
        "--compression-size",
        type=int,
        default=1000,
        help="Sockets of the deflate pass (0: skip).",
    )
    parser.add_argument(
        "--profile", action="store_true", help="Sample the recsite server with py-spy."
    )
    args = parser.parse_args()
    data = run(
        sizes=[int(s) for s in args.sizes.split(",") if s],
        changes=args.changes,
        workers=args.workers,
        db=BenchDB(args.db),
        fresh_db=not args.reuse_db,
        compression_size=args.compression_size,
        profile=args.profile,
    )
    write_json("fanout", data)


if __name__ == "__main__":
    main()
