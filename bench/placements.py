"""Per-event cost of a socket watching three placements, against one list.

Logged-in users each hold one /ws/recommendations/ socket on a live
``manage.py serve`` (the benchmark database: 10,000 demo items). In the
"one list" round every socket shows only ``for_you``; in the "three
placements" round every socket also watches ``similar`` (of an item),
``complements`` (of the user's basket) and ``trending``. Each user sends the
same events in both rounds (4 in 5 ``view``, 1 in 5 ``cart``, each on the
item at a given rank of the list they are shown), one at a time, waiting for
the ack and the new ``for_you`` list; each round has its own users. The figures are the
server's CPU per event (from /proc, PostgreSQL's beside it), the event ->
``for_you`` latency, and how many watched lists were pushed again. The issue
asks the three-placement cost to stay within 2x of one list.

    .venv/bin/python bench/placements.py [--users 40] [--events 25] [--reuse-db]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import time
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.sync.client import ClientConnection, connect

from bench.database import BenchDB
from bench.figures import print_table, summarize_ms, write_json
from bench.procfs import CpuMeter
from bench.servers import start_recsite
from tests.support.servers import free_port

WATCHED = ("similar", "complements", "trending")
RECV_SECS = 30.0


def _recv(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=RECV_SECS))


def _open(stack: contextlib.ExitStack, port: int, cookie: str) -> ClientConnection:
    ws = stack.enter_context(
        connect(
            f"ws://127.0.0.1:{port}/ws/recommendations/",
            origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": cookie},
            open_timeout=RECV_SECS,
        )
    )
    first = _recv(ws)
    assert first["type"] == "recommendations", first
    ws.shown = [entry["id"] for entry in first["items"]]  # what the user sees
    return ws


def _watch(ws: ClientConnection, placement: str, item: int) -> None:
    frame = {"type": "watch", "placement": placement, "id": "w"}
    if placement == "similar":
        frame["item"] = item  # complements follow the user's basket
    ws.send(json.dumps(frame))
    assert _recv(ws)["type"] == "ack"
    listed = _recv(ws)
    assert listed.get("placement") == placement, listed


def _round(
    port: int,
    cookies: list[str],
    plans: list[list[tuple[str, int]]],
    *,
    watch: bool,
    server_pid: int,
    anchor: int,
) -> dict[str, Any]:
    """Open every socket, watch (or not), send every user's events; measure."""
    with contextlib.ExitStack() as stack:
        sockets = [_open(stack, port, cookie) for cookie in cookies]
        return _measure(
            sockets, plans, watch=watch, server_pid=server_pid, anchor=anchor
        )


def _measure(
    sockets: list[ClientConnection],
    plans: list[list[tuple[str, int]]],
    *,
    watch: bool,
    server_pid: int,
    anchor: int,
) -> dict[str, Any]:
    if watch:
        for ws in sockets:
            for placement in WATCHED:
                _watch(ws, placement, anchor)
    time.sleep(1.0)  # let connection work settle before measuring
    meter = CpuMeter(server_pid)
    latencies: list[float] = []
    extra_pushes = 0
    sent = 0
    for step in range(max(len(plan) for plan in plans)):
        for n, (ws, plan) in enumerate(zip(sockets, plans, strict=True)):
            if step >= len(plan):
                continue
            action, rank = plan[step]
            # Users act on what they are shown: the item at that rank.
            item = ws.shown[rank % len(ws.shown)]
            client_id = f"{'w' if watch else 'o'}-{n}-{step}"
            started = time.perf_counter()
            ws.send(
                json.dumps(
                    {
                        "type": "event",
                        "action": action,
                        "item": item,
                        "id": client_id,
                    }
                )
            )
            sent += 1
            while True:
                frame = _recv(ws)
                if (
                    frame["type"] == "recommendations"
                    and frame.get("placement", "for_you") == "for_you"
                ):
                    latencies.append((time.perf_counter() - started) * 1000)
                    ws.shown = [entry["id"] for entry in frame["items"]] or ws.shown
                    break
                if frame["type"] == "recommendations":
                    extra_pushes += 1
    # Trailing re-pushes of watched lists belong to these events too.
    deadline = time.monotonic() + 1.5
    for ws in sockets:
        while time.monotonic() < deadline:
            try:
                frame = json.loads(ws.recv(timeout=0.05))
            except TimeoutError:
                break
            if frame["type"] == "recommendations":
                extra_pushes += 1
    cpu = meter.stop()
    return {
        "events": sent,
        "server_cpu_us_per_event": round(1e6 * cpu["server_cpu_secs"] / sent, 1),
        "postgres_cpu_us_per_event": round(1e6 * cpu["postgres_cpu_secs"] / sent, 1),
        "watched_lists_pushed": extra_pushes,
        "latency_ms": summarize_ms(latencies),
        "machine_busy_pct": cpu["machine_busy_pct"],
    }


def run(*, users: int, events: int, db: BenchDB, fresh_db: bool) -> dict[str, Any]:
    db.prepare(fresh=fresh_db)
    print(f"creating {2 * users} users with sessions…", flush=True)
    made = db.task("users", str(2 * users))
    items = made["items"]
    anchor = items[len(items) // 2]
    out: dict[str, Any] = {"users": users, "events_per_user": events}
    rounds = []
    for watch in (False, True):
        # Each round its own users (no history carried over), the same
        # actions and ranks.
        cookies = made["cookies"][users:] if watch else made["cookies"][:users]
        rng = random.Random(7)
        plans = [
            [
                ("cart" if rng.random() < 0.2 else "view", rng.randrange(10))
                for _ in range(events)
            ]
            for _ in cookies
        ]
        port = free_port()
        server = start_recsite(db, port).wait_ready()
        try:
            name = "three placements" if watch else "one list"
            print(f"{name}: {users} users x {events} events…", flush=True)
            result = _round(
                port, cookies, plans, watch=watch, server_pid=server.pid, anchor=anchor
            )
        finally:
            server.stop()
        result["round"] = name
        rounds.append(result)
    out["rounds"] = rounds
    one, three = rounds
    out["cpu_ratio"] = round(
        three["server_cpu_us_per_event"] / max(1e-9, one["server_cpu_us_per_event"]), 2
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--events", type=int, default=25, help="Events per user.")
    parser.add_argument("--db", default="recsite_bench_placements")
    parser.add_argument(
        "--reuse-db", action="store_true", help="Keep the prepared database."
    )
    args = parser.parse_args()
    result = run(
        users=args.users,
        events=args.events,
        db=BenchDB(args.db),
        fresh_db=not args.reuse_db,
    )
    rows = [
        {
            "round": r["round"],
            "events": r["events"],
            "server µs/event": r["server_cpu_us_per_event"],
            "postgres µs/event": r["postgres_cpu_us_per_event"],
            "p50 ms": r["latency_ms"]["p50"],
            "p95 ms": r["latency_ms"]["p95"],
            "watched re-pushes": r["watched_lists_pushed"],
            "busy %": r["machine_busy_pct"],
        }
        for r in result["rounds"]
    ]
    print_table(
        "Per-event cost, three watched placements vs one list",
        rows,
        list(rows[0]),
    )
    print(f"server CPU per event, three placements / one list: {result['cpu_ratio']}x")
    path = write_json("placements", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
