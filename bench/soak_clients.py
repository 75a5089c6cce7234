"""The soak's load-client processes: catalog followers and shoppers.

Each process holds a share of the sockets for the whole soak and answers the
parent's commands on its pipe (bench/loadpool.WorkerPool):

- ``("start", start_at, measure_at, end_at)``: shoppers send ``view`` events
  from ``start_at`` to ``end_at``; latencies count from ``measure_at`` on
  (the end of the warm-up);
- ``("status",)``: counters so far (cheap, answered while the load runs);
- ``("drop", n)``: followers close ``n`` sockets, which reconnect and resume;
- ``("finish", final_seq, stall_secs)``: wait until every follower has
  applied ``final_seq`` and every event is answered (or nothing moved for
  ``stall_secs``), then send the figures;
- ``("stop",)``: close every socket and end.

Followers keep the documented client rules of ``/ws/sync/`` (docs/protocol.md)
on the lean load client (tests/support/loadclient.py): a change is applied
only when its seq is ``applied + 1``, one at or below ``applied`` is a
duplicate, a jump or a ``hello``/``heartbeat`` ahead of ``applied`` sends
``resume``, and a dropped socket reconnects with backoff and resumes from
``applied``. Times are ``time.monotonic()``, comparable with the committer's.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
import re
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.procfs import now, raise_nofile
from tests.support.loadclient import WSClient, connect_many, ws_connect

DRAIN_MAX_SECS = 600.0  # a backlog still draining after this much is reported as lost
_SEQ = re.compile(rb'"seq":(\d+)')
_SENT = re.compile(rb"bench t=([0-9.]+)")


def _window(sent: array, lat: array, measure_at: float) -> np.ndarray:
    """Return the latencies (ms) of sends at or after ``measure_at``.

    ``sent`` and ``lat`` are parallel arrays: send times (monotonic s) and
    latencies (ms), one entry per delivery.
    """
    sent_arr = np.frombuffer(sent, dtype=np.float64)
    lat_arr = np.frombuffer(lat, dtype=np.float64)
    return lat_arr[sent_arr >= measure_at].copy()


async def drain(outstanding: Callable[[], int], stall_secs: float) -> None:
    """Wait until ``outstanding()`` is 0 or has not fallen for ``stall_secs``.

    An overloaded server answers late, not never: what it still answers is
    counted as late (in the latencies), and only what stays unanswered once
    progress stops is lost.
    """
    left, since = outstanding(), now()
    give_up = since + DRAIN_MAX_SECS
    while left and now() - since < stall_secs and now() < give_up:
        await asyncio.sleep(0.1)
        current = outstanding()
        if current < left:
            left, since = current, now()


# --- catalog followers (/ws/sync/) --------------------------------------------------


class Follower:
    """One /ws/sync/ client's state, kept across its reconnects."""

    __slots__ = (
        "applied",
        "client",
        "dupes",
        "gaps",
        "heartbeats",
        "pending",
        "reconnects",
        "resets",
        "resumes",
        "skipped",
        "start",
    )

    def __init__(self) -> None:
        self.client: WSClient | None = None
        self.applied = -1  # last seq applied; -1 until the first hello
        self.start = -1  # seq of the first hello: every later change is expected
        self.pending = False  # a resume is in flight
        self.gaps = self.dupes = self.resumes = self.resets = 0
        self.skipped = 0  # changes jumped over by a reset (never delivered)
        self.reconnects = self.heartbeats = 0

    def resume(self) -> None:
        self.pending = True
        self.resumes += 1
        self.client.send_text(json.dumps({"type": "resume", "after": self.applied}))


def sync_worker(conn: Any, port: int, count: int, concurrency: int) -> None:
    """Hold ``count`` /ws/sync/ sockets that follow the client rules."""
    raise_nofile()
    asyncio.run(_Followers(conn, port, count, concurrency).run())


class _Followers:
    def __init__(self, conn: Any, port: int, count: int, concurrency: int) -> None:
        self.conn, self.port, self.count, self.concurrency = (
            conn,
            port,
            count,
            concurrency,
        )
        self.followers: list[Follower] = []
        self.sent = array("d")  # per delivery: the committer's send time, s
        self.lat = array("d")  # per delivery: arrival - send, ms
        self.other: Counter = Counter()
        self.stopping = False

    def on_text(self, client: WSClient, t: float, data: bytes) -> None:
        f = client.state.get("f")
        if f is None:  # first frame of a socket of the initial connect
            f = client.state["f"] = Follower()
            f.client = client
            self.followers.append(f)
        head = data[:24]
        if b'"change"' in head:
            seq = int(_SEQ.search(data).group(1))
            if seq <= f.applied:
                f.dupes += 1
            elif seq == f.applied + 1:
                f.applied = seq
                m = _SENT.search(data)
                if m:
                    sent = float(m.group(1))
                    self.sent.append(sent)
                    self.lat.append((t - sent) * 1000)
            else:
                f.gaps += 1
                if not f.pending:
                    f.resume()
        elif b'"hello"' in head:
            seq = int(_SEQ.search(data).group(1))
            if f.applied < 0:
                f.applied = f.start = seq
            else:  # a reconnect: resume from what was applied
                f.resume()
        elif b'"heartbeat"' in head:
            f.heartbeats += 1
            if int(_SEQ.search(data).group(1)) > f.applied and not f.pending:
                f.resume()
        elif b'"resumed"' in head:
            f.pending = False
        elif b'"reset"' in head:
            # The log no longer holds what this socket missed: a real client
            # reloads the snapshot; here the jumped-over changes count as lost.
            seq = int(_SEQ.search(data).group(1))
            f.resets += 1
            f.pending = False
            f.skipped += max(0, seq - f.applied)
            f.applied = max(f.applied, seq)
        else:
            self.other[bytes(head).decode(errors="replace")] += 1

    def watch(self, f: Follower) -> None:
        f.client.closed.add_done_callback(
            lambda _fut: self.stopping or asyncio.ensure_future(self.reconnect(f))
        )

    async def reconnect(self, f: Follower) -> None:
        backoff = 0.05
        while not self.stopping:
            await asyncio.sleep(backoff * (0.5 + random.random()))
            f.pending = False

            def on_text(client: WSClient, t: float, data: bytes, f: Follower = f):
                client.state["f"] = f
                f.client = client
                self.on_text(client, t, data)

            try:
                client = await ws_connect(
                    self.port, "/ws/sync/", timeout_secs=30, on_text=on_text
                )
            except Exception:
                backoff = min(backoff * 2, 1.0)
                continue
            f.client = client
            f.reconnects += 1
            self.watch(f)
            return

    def status(self) -> dict[str, Any]:
        started = [f for f in self.followers if f.start >= 0]
        return {
            "sockets": len(self.followers),
            "open": sum(
                1 for f in self.followers if f.client and not f.client.closed.done()
            ),
            "started": len(started),
            "sum_start": sum(f.start for f in started),
            "sum_applied": sum(f.applied for f in started),
            "skipped": sum(f.skipped for f in started),
            "gaps": sum(f.gaps for f in self.followers),
            "dupes": sum(f.dupes for f in self.followers),
            "resumes": sum(f.resumes for f in self.followers),
            "resets": sum(f.resets for f in self.followers),
            "reconnects": sum(f.reconnects for f in self.followers),
            "heartbeats": sum(f.heartbeats for f in self.followers),
            "other_frames": dict(self.other),
        }

    async def run(self) -> None:
        clients, errors = await connect_many(
            self.port,
            "/ws/sync/",
            self.count,
            concurrency=self.concurrency,
            on_text=self.on_text,
        )
        deadline = now() + 30
        while now() < deadline and sum(f.start >= 0 for f in self.followers) < len(
            clients
        ):
            await asyncio.sleep(0.05)
        for client in clients:
            if "f" not in client.state:  # open, but no hello yet
                f = client.state["f"] = Follower()
                f.client = client
                self.followers.append(f)
            self.watch(client.state["f"])
        self.conn.send({"connected": len(clients), "errors": dict(errors)})
        loop = asyncio.get_running_loop()
        measure_at = 0.0
        while True:
            cmd = await loop.run_in_executor(None, self.conn.recv)
            if cmd[0] == "start":
                measure_at = cmd[2]
                self.conn.send("ok")
            elif cmd[0] == "status":
                self.conn.send(self.status())
            elif cmd[0] == "drop":
                # Churn: close sockets from the client side, as a browser
                # losing its network does; each reconnects and resumes.
                live = [
                    f for f in self.followers if f.client and not f.client.closed.done()
                ]
                for f in random.sample(live, min(cmd[1], len(live))):
                    f.client.abort()
                self.conn.send("ok")
            elif cmd[0] == "finish":
                final_seq = cmd[1]
                await drain(
                    lambda seq=final_seq: sum(
                        max(0, seq - f.applied) for f in self.followers
                    ),
                    cmd[2],
                )
                out = self.status()
                behind = [max(0, final_seq - f.applied) for f in self.followers]
                out.update(
                    never_started=sum(1 for f in self.followers if f.start < 0),
                    lost=sum(behind) + out["skipped"],
                    sockets_behind=sum(1 for b in behind if b),
                    lat_ms=_window(self.sent, self.lat, measure_at),
                )
                self.conn.send(out)
            elif cmd[0] == "stop":
                self.stopping = True
                for f in self.followers:
                    if f.client is not None:
                        f.client.abort()
                await asyncio.sleep(0.2)
                self.conn.send("ok")
                return


# --- shoppers (/ws/recommendations/) -------------------------------------------------


def shop_worker(
    conn: Any,
    wid: int,
    port: int,
    cookies: list[str],
    items: list[int],
    rate_per_user: float,
) -> None:
    """Hold one /ws/recommendations/ socket per user; send ``view`` events."""
    raise_nofile()
    asyncio.run(_Shoppers(conn, wid, port, cookies, items, rate_per_user).run())


class _Shoppers:
    """Logged-in users sending ``view`` events open-loop at a fixed rate.

    An event's latency runs from its send to the first ``recommendations``
    frame after its ``ack`` (the socket delivers in order), as in
    bench/latency.py.
    """

    def __init__(
        self,
        conn: Any,
        wid: int,
        port: int,
        cookies: list[str],
        items: list[int],
        rate_per_user: float,
    ) -> None:
        self.conn, self.wid, self.port = conn, wid, port
        self.cookies, self.items, self.rate = cookies, items, rate_per_user
        self.rng = random.Random(wid)
        self.clients: list[WSClient] = []
        self.sent = self.acked = self.lists = self.extra = 0
        self.errors: Counter = Counter()
        self.list_sent, self.list_lat = array("d"), array("d")
        self.ack_sent, self.ack_lat = array("d"), array("d")
        self.initial = 0

    def on_text(self, client: WSClient, t: float, data: bytes) -> None:
        head = data[:28]
        pending: deque = client.state.setdefault("pending", deque())
        if head.startswith(b'{"type":"ack"'):
            eid = json.loads(data).get("id")
            for entry in pending:
                if entry[2] is None:
                    if entry[0] == eid:
                        entry[2] = t
                        self.acked += 1
                        self.ack_sent.append(entry[1])
                        self.ack_lat.append((t - entry[1]) * 1000)
                    break
        elif head.startswith(b'{"type":"recommendations"'):
            self.lists += 1
            if not client.state.get("initial"):
                client.state["initial"] = True
                self.initial += 1
            elif pending and pending[0][2] is not None:
                entry = pending.popleft()
                self.list_sent.append(entry[1])
                self.list_lat.append((t - entry[1]) * 1000)
            else:
                self.extra += 1  # a re-push not caused by this socket's event
        elif head.startswith(b'{"type":"error"'):
            msg = json.loads(data)
            self.errors[msg.get("code")] += 1
            for i, entry in enumerate(pending):
                if entry[0] == msg.get("id"):
                    del pending[i]
                    break

    async def send_events(self, start_at: float, end_at: float) -> None:
        """Send every user's events on an open-loop schedule until ``end_at``."""
        period = 1.0 / self.rate
        tag = f"{time.time_ns():x}-{self.wid}"
        while now() < start_at:
            await asyncio.sleep(min(0.05, start_at - now()))
        heap = [
            (start_at + self.rng.random() * period, i) for i in range(len(self.clients))
        ]
        heapq.heapify(heap)
        serial = 0
        while heap and now() < end_at:
            t = now()
            while heap and heap[0][0] <= t:
                due, i = heapq.heappop(heap)
                cl = self.clients[i]
                if not cl.closed.done():
                    serial += 1
                    eid = f"{tag}-{serial}"
                    cl.state["pending"].append([eid, now(), None])
                    cl.send_text(
                        json.dumps(
                            {
                                "type": "event",
                                "action": "view",
                                "item": self.rng.choice(self.items),
                                "id": eid,
                            }
                        )
                    )
                    self.sent += 1
                heapq.heappush(heap, (due + period, i))
            await asyncio.sleep(max(0.0, heap[0][0] - now()))

    def status(self) -> dict[str, Any]:
        return {
            "sockets": len(self.clients),
            "open": sum(1 for cl in self.clients if not cl.closed.done()),
            "sent": self.sent,
            "acked": self.acked,
            "lists": self.lists,
            "extra_lists": self.extra,
            "errors": dict(self.errors),
            "unanswered": sum(len(cl.state["pending"]) for cl in self.clients),
        }

    async def run(self) -> None:
        self.clients, errors = await connect_many(
            self.port,
            "/ws/recommendations/",
            len(self.cookies),
            concurrency=50,
            cookies=self.cookies,
            on_text=self.on_text,
        )
        for cl in self.clients:
            cl.state.setdefault("pending", deque())
        deadline = now() + 60
        while self.initial < len(self.clients) and now() < deadline:
            await asyncio.sleep(0.05)
        self.conn.send({"connected": len(self.clients), "errors": dict(errors)})
        loop = asyncio.get_running_loop()
        sender = None
        measure_at = 0.0
        while True:
            cmd = await loop.run_in_executor(None, self.conn.recv)
            if cmd[0] == "start":
                _, start_at, measure_at, end_at = cmd
                sender = asyncio.ensure_future(self.send_events(start_at, end_at))
                self.conn.send("ok")
            elif cmd[0] == "status":
                self.conn.send(self.status())
            elif cmd[0] == "finish":
                if sender is not None:
                    await sender
                await drain(
                    lambda: sum(len(cl.state["pending"]) for cl in self.clients), cmd[2]
                )
                out = self.status()
                out["lat_ms"] = _window(self.list_sent, self.list_lat, measure_at)
                out["ack_ms"] = _window(self.ack_sent, self.ack_lat, measure_at)
                self.conn.send(out)
            elif cmd[0] == "stop":
                if sender is not None:
                    sender.cancel()
                for cl in self.clients:
                    cl.abort()
                await asyncio.sleep(0.2)
                self.conn.send("ok")
                return
