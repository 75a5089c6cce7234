"""Soak: thousands of sockets held for minutes under steady load; memory flat, nothing lost.

One ``serve`` process on the benchmark database (PostgreSQL, Redis, the
10,000-item demo catalog). Load-client processes hold the sockets: most on
/ws/sync/ following the documented client rules (bench/soak_clients.py), some
logged-in users on /ws/recommendations/ sending ``view`` events at a fixed
total rate. A committer saves one catalog item per second (a committed change
broadcast after commit, as in bench/fanout.py) for the whole run.

After a warm-up under the full load, the server's RSS is taken as the start.
Every ``--every`` s a line shows RSS, CPU, open sockets, changes delivered /
expected, events acked / sent, lists received and the queues (the kernel's
send queue to the clients, Redis's output buffer for the server, changes the
server has not yet delivered). At the end a table and
bench/results/soak.json; the exit status is 1 if RSS grew ≥ 5 % or a change
or an event was lost.

    .venv/bin/python bench/soak.py                       # 5,000 sockets, 600 s
    .venv/bin/python bench/soak.py --sockets 500 --duration 60
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
import time
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.database import BenchDB
from bench.figures import print_table, summarize_ms, write_json
from bench.loadpool import WorkerPool
from bench.procfs import now, raise_nofile
from bench.servers import start_recsite
from bench.soak_clients import DRAIN_MAX_SECS, shop_worker, sync_worker
from bench.soak_probes import RedisProbe, latest_seq, metrics, server_tcp
from tests.support.servers import free_port

RSS_GROWTH_LIMIT_PCT = 5.0


class Soak:
    """The server, the committer, the load clients and the readings of one soak."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.token = secrets.token_hex(16)
        self.samples: list[dict[str, Any]] = []
        self.server = self.committer = self.followers = self.shoppers = None
        self.redis: RedisProbe | None = None
        self.redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        self.redis_port = int(self.redis_url.rsplit(":", 1)[1].split("/")[0])
        self.saves: list[float] = []
        self.save_ms: list[float] = []  # per change: the committer's save + commit
        self.last_cpu: tuple[float, float] | None = None
        self.stopping = threading.Event()

    # --- setup and teardown ----------------------------------------------------------

    def start(self) -> None:
        a = self.args
        db = BenchDB(a.db)
        db.prepare(fresh=not a.reuse_db)
        shoppers = a.users if a.event_rate > 0 else 0
        made = db.task("users", str(shoppers)) if shoppers else {"cookies": []}
        port = free_port()
        print(f"soak: server on 127.0.0.1:{port}, database {a.db}…", flush=True)
        self.server = start_recsite(
            db, port, METRICS_TOKEN=self.token, **self.server_env()
        )
        sync_count = a.sockets - shoppers
        shares = [
            sync_count // a.workers + (1 if i < sync_count % a.workers else 0)
            for i in range(a.workers)
        ]
        t0 = now()
        self.followers = WorkerPool(
            sync_worker,
            [(port, share, max(1, 200 // a.workers)) for share in shares],
            hello_secs=120 + a.sockets / 20,
        )
        if shoppers:
            cookies = made["cookies"]
            self.shoppers = WorkerPool(
                shop_worker,
                [
                    (
                        w,
                        port,
                        cookies[w :: a.shop_workers],
                        made["items"],
                        a.event_rate / shoppers,
                    )
                    for w in range(a.shop_workers)
                ],
                hello_secs=120,
            )
        self.connect_secs = now() - t0
        # Started after the load clients fork, so that they inherit neither.
        self.committer = db.committer()
        self.redis = RedisProbe(self.redis_url, os.environ["REDIS_PREFIX"])
        print(
            f"  {self.connected()} sockets open in {self.connect_secs:.1f} s "
            f"(errors: {self.connect_errors() or 'none'})",
            flush=True,
        )

    def server_env(self) -> dict[str, str]:
        if self.args.heartbeat is not None:
            return {"SYNC_HEARTBEAT_SECS": str(self.args.heartbeat)}
        return {}

    def pools(self) -> list[WorkerPool]:
        return [p for p in (self.followers, self.shoppers) if p is not None]

    def connected(self) -> int:
        return sum(p.connected for p in self.pools())

    def connect_errors(self) -> dict[str, int]:
        merged: dict[str, int] = {}
        for p in self.pools():
            for h in p.hello:
                for k, v in h["errors"].items():
                    merged[k] = merged.get(k, 0) + v
        return merged

    def close(self) -> None:
        for p in self.pools():
            p.close()
        if self.committer is not None:
            self.committer.close()
        if self.redis is not None:
            self.redis.close()
        if self.server is not None:
            self.server.stop()

    # --- readings ----------------------------------------------------------------------

    def sample(self, elapsed: float, phase: str) -> dict[str, Any]:
        """Read the server, Redis and the clients once; print and keep one line."""
        srv = self.server
        t, cpu = now(), srv.cpu_secs()
        cpu_pct = (
            100 * (cpu - self.last_cpu[1]) / max(1e-9, t - self.last_cpu[0])
            if self.last_cpu
            else None
        )
        self.last_cpu = (t, cpu)
        tcp = server_tcp(srv.pid, srv.port, redis_port=self.redis_port, pg_port=5432)
        redis = self.redis.read(tcp.pop("redis_ports"))
        m = metrics(srv.port, self.token)
        seq = latest_seq(srv.port)
        sync = _merge(self.followers.ask("status", timeout_secs=30))
        shop = (
            _merge(self.shoppers.ask("status", timeout_secs=30))
            if self.shoppers
            else {}
        )
        expected = sync["started"] * seq - sync["sum_start"]
        delivered = sync["sum_applied"] - sync["sum_start"] - sync["skipped"]
        row = {
            "elapsed_secs": round(elapsed, 1),
            "phase": phase,
            "rss_kib": srv.rss_kib(),
            "cpu_pct": round(cpu_pct, 1) if cpu_pct is not None else None,
            "seq": seq,
            "changes_saved": len(self.saves),
            "changes_expected": expected,
            "changes_delivered": delivered,
            "sync": sync,
            "shop": shop,
            "tcp": tcp,
            "redis": redis,
            "ws_open_metric": {
                k: v for k, v in m.items() if k.startswith("recsite_ws_connections")
            },
            "changelog_lag": m.get("recsite_changelog_lag"),
            "broadcast_failures": sum(
                v for k, v in m.items() if k.startswith("recsite_broadcast_failures")
            ),
            "loadavg_1": os.getloadavg()[0],
        }
        self.samples.append(row)
        print(
            f"{elapsed:6.0f}s {phase:6} rss {row['rss_kib'] / 1024:7.1f} MiB"
            f"  cpu {_f(row['cpu_pct'])}%"
            f"  open {tcp['ws_open']}/{self.connected()}"
            f"  changes {delivered:,}/{expected:,}"
            f"  events {shop.get('acked', 0):,}/{shop.get('sent', 0):,}"
            f"  lists {shop.get('lists', 0):,}"
            f"  sendq {tcp['ws_sendq_kib']:.0f} KiB"
            f"  redis {redis['used_kib'] / 1024:.1f} MiB omem {redis['omem_kib']:.0f} KiB"
            f" ch {redis['channels']}"
            f"  lag {_f(row['changelog_lag'])}  pg {tcp['pg_conns']}"
            f"  load {row['loadavg_1']:.1f}",
            flush=True,
        )
        return row

    # --- the run -------------------------------------------------------------------------

    def write(self, start_at: float, end_at: float) -> None:
        """Save one item every ``change_every`` s from ``start_at`` to ``end_at``."""
        next_save = start_at
        while next_save < end_at:
            if self.stopping.wait(max(0.0, next_save - now())):
                return
            sent = self.committer.save(1)
            self.saves.extend(sent)
            self.save_ms.append((now() - sent[0]) * 1000)
            # A late save is not made up with a burst: the rate stays 1/interval.
            next_save = max(next_save + self.args.change_every, now())

    def run(self) -> dict[str, Any]:
        a = self.args
        self.start()
        start_at = now() + 0.5
        measure_at = start_at + a.warmup
        end_at = measure_at + a.duration
        for p in self.pools():
            p.ask("start", start_at, measure_at, end_at)
        next_sample = start_at
        rss_start = None
        users = a.users if self.shoppers else 0
        print(
            f"load: {a.sockets - users} sync sockets, "
            f"{users} users at {a.event_rate:g} events/s, "
            f"1 change every {a.change_every:g} s; warm-up {a.warmup:g} s, "
            f"then {a.duration:g} s",
            flush=True,
        )
        # The writer has a thread of its own: a slow reading must not delay a save.
        writer = threading.Thread(target=self.write, args=(start_at, end_at))
        writer.start()
        try:
            while True:
                t = now()
                if t >= end_at:
                    break
                if rss_start is None and t >= measure_at:
                    rss_start = self.sample(t - start_at, "start")
                    next_sample = t + a.every
                elif t >= next_sample:
                    self.sample(t - start_at, "warm" if t < measure_at else "load")
                    next_sample += a.every
                    if a.churn:
                        self.followers.ask("drop", max(1, a.churn // a.workers))
                time.sleep(max(0.0, min(next_sample, end_at) - now()))
        finally:
            self.stopping.set()
            writer.join()
        end_row = self.sample(now() - start_at, "end")
        final_seq = latest_seq(self.server.port)
        print(f"draining (final seq {final_seq})…", flush=True)
        sync = self.followers.ask(
            "finish", final_seq, a.drain, timeout_secs=DRAIN_MAX_SECS + a.drain + 60
        )
        shop = (
            self.shoppers.ask(
                "finish", final_seq, a.drain, timeout_secs=DRAIN_MAX_SECS + a.drain + 60
            )
            if self.shoppers
            else []
        )
        return self.report(rss_start or end_row, end_row, final_seq, sync, shop)

    def report(
        self,
        start: dict[str, Any],
        end: dict[str, Any],
        final_seq: int,
        sync_parts: list[dict[str, Any]],
        shop_parts: list[dict[str, Any]],
    ) -> dict[str, Any]:
        a = self.args
        sync = _merge(sync_parts)
        shop = _merge(shop_parts) if shop_parts else {}
        change_lat = np.concatenate([p["lat_ms"] for p in sync_parts])
        list_lat = (
            np.concatenate([p["lat_ms"] for p in shop_parts])
            if shop_parts
            else np.array([])
        )
        ack_lat = (
            np.concatenate([p["ack_ms"] for p in shop_parts])
            if shop_parts
            else np.array([])
        )
        growth = 100 * (end["rss_kib"] - start["rss_kib"]) / start["rss_kib"]
        measured = [s for s in self.samples if s["phase"] in ("start", "load", "end")]
        slope = _slope_per_min(measured, "rss_kib")
        lost_events = shop.get("sent", 0) - shop.get("acked", 0)
        unanswered = shop.get("unanswered", 0)
        seq_check = final_seq - self.samples[0]["seq"] if self.samples else None
        out = {
            "sockets": a.sockets,
            "connected": self.connected(),
            "connect_secs": round(self.connect_secs, 2),
            "connect_errors": self.connect_errors(),
            "users": a.users if self.shoppers else 0,
            "event_rate_per_sec": a.event_rate,
            "change_every_secs": a.change_every,
            "warmup_secs": a.warmup,
            "duration_secs": a.duration,
            "heartbeat_secs": a.heartbeat,
            "churn_per_status": a.churn,
            "changes_saved": len(self.saves),
            "changes_per_sec": round(len(self.saves) / (a.warmup + a.duration), 3),
            "save_ms": summarize_ms(self.save_ms),
            "final_seq": final_seq,
            "seq_advance_since_first_sample": seq_check,
            "rss_start_kib": start["rss_kib"],
            "rss_end_kib": end["rss_kib"],
            "rss_growth_pct": round(growth, 2),
            "rss_slope_kib_per_min": slope,
            "changes_lost": sync["lost"],
            "sync": {k: v for k, v in sync.items() if k != "lat_ms"},
            "events_sent": shop.get("sent", 0),
            "events_acked": shop.get("acked", 0),
            "events_lost": lost_events,
            "events_without_list": unanswered,
            "shop": {k: v for k, v in shop.items() if k not in ("lat_ms", "ack_ms")},
            "change_latency_ms": summarize_ms(change_lat),
            "event_to_list_ms": summarize_ms(list_lat),
            "ack_ms": summarize_ms(ack_lat),
            "queues_start": _queues(start),
            "queues_end": _queues(end),
            "samples": self.samples,
        }
        out["failures"] = [
            msg
            for bad, msg in (
                (growth >= RSS_GROWTH_LIMIT_PCT, f"RSS grew {growth:.1f} %"),
                (sync["lost"] > 0, f"{sync['lost']} changes lost"),
                (lost_events > 0, f"{lost_events} events not acked"),
                (unanswered > 0, f"{unanswered} events without a new list"),
                (
                    sync["never_started"] > 0,
                    f"{sync['never_started']} sockets got no hello",
                ),
                (self.connected() < a.sockets, "not every socket connected"),
            )
            if bad
        ]
        self.print_report(out)
        return out

    def print_report(self, out: dict[str, Any]) -> None:
        cl, el = out["change_latency_ms"], out["event_to_list_ms"]
        qs, qe = out["queues_start"], out["queues_end"]
        rows = [
            ("sockets connected", f"{out['connected']:,} / {out['sockets']:,}", ""),
            (
                "server RSS at start (after warm-up)",
                f"{out['rss_start_kib'] / 1024:.1f} MiB",
                "",
            ),
            ("server RSS at end", f"{out['rss_end_kib'] / 1024:.1f} MiB", ""),
            (
                "RSS growth",
                f"{out['rss_growth_pct']:.2f} %",
                f"< {RSS_GROWTH_LIMIT_PCT:g} %",
            ),
            (
                "RSS trend (least squares)",
                f"{out['rss_slope_kib_per_min']:+.0f} KiB/min",
                "",
            ),
            (
                "changes saved (per s; save + commit p50 / p99)",
                f"{out['changes_saved']:,} ({out['changes_per_sec']:.2f}/s; "
                f"{_ms(out['save_ms'])})",
                f"{1 / self.args.change_every:g}/s",
            ),
            ("changes lost (expected - delivered)", f"{out['changes_lost']:,}", "0"),
            (
                "gaps seen / resumes / resets / reconnects",
                f"{out['sync']['gaps']} / {out['sync']['resumes']} / "
                f"{out['sync']['resets']} / {out['sync']['reconnects']}",
                "",
            ),
            ("change delivery p50 / p99", _ms(cl), ""),
            (
                "events sent / acked",
                f"{out['events_sent']:,} / {out['events_acked']:,}",
                "",
            ),
            (
                "events lost (sent - acked)",
                f"{out['events_lost']:,}",
                "0",
            ),
            ("event → list p50 / p99", _ms(el), ""),
            ("ack p50 / p99", _ms(out["ack_ms"]), ""),
            (
                "send queue to clients start → end",
                f"{qs['ws_sendq_kib']} → {qe['ws_sendq_kib']} KiB",
                "",
            ),
            (
                "Redis output buffer for the server",
                f"{qs['redis_omem_kib']} → {qe['redis_omem_kib']} KiB",
                "",
            ),
            (
                "Redis memory",
                f"{qs['redis_used_kib']} → {qe['redis_used_kib']} KiB",
                "",
            ),
            (
                "Redis channels of the server",
                f"{qs['channels']} → {qe['channels']}",
                "",
            ),
            (
                "changes not yet delivered (server)",
                f"{qs['changelog_lag']} → {qe['changelog_lag']}",
                "",
            ),
            ("PostgreSQL connections", f"{qs['pg_conns']} → {qe['pg_conns']}", ""),
        ]
        print_table(
            f"soak: {out['sockets']:,} sockets, {out['duration_secs']:g} s "
            f"(after {out['warmup_secs']:g} s warm-up)",
            [{"figure": f, "value": v, "bound": b} for f, v, b in rows],
            ["figure", "value", "bound"],
        )
        print("\nFAIL: " + "; ".join(out["failures"]) if out["failures"] else "\nOK")


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the workers' numeric counters (dicts of counts merged key by key)."""
    out: dict[str, Any] = {}
    for part in parts:
        for k, v in part.items():
            if isinstance(v, dict):
                d = out.setdefault(k, {})
                for kk, vv in v.items():
                    d[kk] = d.get(kk, 0) + vv
            elif isinstance(v, (int, float)):
                out[k] = out.get(k, 0) + v
    return out


def _queues(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "ws_sendq_kib": row["tcp"]["ws_sendq_kib"],
        "pg_conns": row["tcp"]["pg_conns"],
        "redis_omem_kib": row["redis"]["omem_kib"],
        "redis_used_kib": row["redis"]["used_kib"],
        "channels": row["redis"]["channels"],
        "changelog_lag": row["changelog_lag"],
    }


def _slope_per_min(rows: list[dict[str, Any]], key: str) -> float:
    """Least-squares slope of ``key`` over elapsed time, per minute."""
    if len(rows) < 2:
        return 0.0
    x = np.array([r["elapsed_secs"] for r in rows], dtype=np.float64) / 60
    y = np.array([r[key] for r in rows], dtype=np.float64)
    return round(float(np.polyfit(x, y, 1)[0]), 1)


def _ms(summary: dict[str, Any]) -> str:
    if not summary["count"]:
        return "-"
    return f"{summary['p50']:,.1f} / {summary['p99']:,.1f} ms"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sockets", type=int, default=5000, help="All sockets, both kinds."
    )
    parser.add_argument(
        "--users", type=int, default=100, help="Of them, /ws/recommendations/ users."
    )
    parser.add_argument(
        "--event-rate", type=float, default=100.0, help="Events/s, all users."
    )
    parser.add_argument(
        "--change-every", type=float, default=1.0, help="Seconds between changes."
    )
    parser.add_argument(
        "--duration", type=float, default=600.0, help="Seconds measured."
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=30.0,
        help="Seconds of load before the start RSS.",
    )
    parser.add_argument(
        "--every", type=float, default=10.0, help="Seconds between status lines."
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=30.0,
        help="After the load: wait for stragglers until none arrives for this long.",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=None,
        help="SYNC_HEARTBEAT_SECS (server default if unset).",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Processes holding /ws/sync/ sockets."
    )
    parser.add_argument(
        "--shop-workers",
        type=int,
        default=1,
        help="Processes holding the users' sockets.",
    )
    parser.add_argument(
        "--churn",
        type=int,
        default=0,
        help="Sync sockets the clients drop at every status line (they resume).",
    )
    parser.add_argument(
        "--db", default="recsite_soak", help="PostgreSQL database of the soak."
    )
    parser.add_argument(
        "--reuse-db", action="store_true", help="Do not recreate the database."
    )
    args = parser.parse_args()
    raise_nofile()
    # A prefix of its own: another server on the same Redis (a benchmark, a
    # test run) must not feed this one's groups, nor this one theirs.
    os.environ.setdefault("REDIS_PREFIX", f"soak{os.getpid()}")
    soak = Soak(args)
    try:
        data = soak.run()
    finally:
        soak.close()
    write_json("soak", data)
    sys.exit(1 if data["failures"] else 0)


if __name__ == "__main__":
    main()
