"""What the soak reads from outside the server while it runs: kernel, Redis, /metrics.

Every reading is cheap (a few milliseconds every few seconds) and comes from
outside the measured process, so reading does not change what is measured:

- the server's TCP sockets from /proc: open WebSockets and the bytes the
  kernel still holds for them (send queue), its Redis and PostgreSQL
  connections;
- Redis: ``INFO memory`` and, for this server's own Redis connections only
  (matched by port), the output buffer Redis holds for them (``omem``: pub/sub
  messages not yet read by the server) and the channels it subscribes;
- the server's ``/metrics`` (a bearer token): open sockets per endpoint,
  changes committed but not yet delivered to the process, failed broadcasts.
"""

from __future__ import annotations

import os
import re
import urllib.request
from typing import Any

_METRIC = re.compile(r"^(recsite_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", re.M)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def server_tcp(pid: int, port: int, *, redis_port: int, pg_port: int) -> dict[str, Any]:
    """Return the TCP sockets of process ``pid`` as the kernel sees them.

    ``ws_open``: established connections on the listening ``port``;
    ``ws_sendq_kib``: bytes written by the server and not yet acknowledged by
    the clients (KiB), the queue a slow reader builds; ``redis_ports``: the
    local ports of its Redis connections; ``pg_conns``: its PostgreSQL
    connections.
    """
    inodes = _socket_inodes(pid)
    out: dict[str, Any] = {
        "ws_open": 0,
        "ws_sendq_kib": 0.0,
        "redis_ports": [],
        "pg_conns": 0,
    }
    with open(f"/proc/{pid}/net/tcp") as fh:
        next(fh)
        for line in fh:
            f = line.split()
            if int(f[9]) not in inodes or f[3] != "01":  # 01: ESTABLISHED
                continue
            local_port = int(f[1].split(":")[1], 16)
            remote_port = int(f[2].split(":")[1], 16)
            if local_port == port:
                out["ws_open"] += 1
                out["ws_sendq_kib"] += int(f[4].split(":")[0], 16) / 1024
            elif remote_port == redis_port:
                out["redis_ports"].append(local_port)
            elif remote_port == pg_port:
                out["pg_conns"] += 1
    out["ws_sendq_kib"] = round(out["ws_sendq_kib"], 1)
    return out


class RedisProbe:
    """Redis's memory and what it holds for one server's connections."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.prefix = prefix

    def read(self, server_ports: list[int]) -> dict[str, Any]:
        """Return Redis's memory and the server's connections' buffers.

        ``omem_kib``: output buffers Redis holds for the server's connections
        (messages published and not yet read by it); ``channels``: pub/sub
        channels under this server's prefix (one per socket and group).
        """
        memory = self.client.info("memory")
        ports = set(server_ports)
        omem = qbuf = subs = 0
        for c in self.client.client_list():
            if int(c["addr"].rsplit(":", 1)[1]) in ports:
                omem += int(c.get("omem", 0))
                qbuf += int(c.get("qbuf", 0))
                subs += int(c.get("sub", 0))
        channels = self.client.pubsub_channels(f"{self.prefix}*")
        return {
            "used_kib": round(memory["used_memory"] / 1024, 1),
            "omem_kib": round(omem / 1024, 1),
            "qbuf_kib": round(qbuf / 1024, 1),
            "subscriptions": subs,
            "channels": len(channels),
        }

    def close(self) -> None:
        self.client.close()


def metrics(port: int, token: str) -> dict[str, float]:
    """Return the server's ``recsite_*`` samples, labels folded into the name."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for name, labels, value in _METRIC.findall(text):
        key = name + (labels or "")
        out[key] = out.get(key, 0.0) + float(value)
    return out


def latest_seq(port: int) -> int:
    """Return the seq ``GET /api/items/`` reflects (the last committed change)."""
    import json

    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/items/?limit=1", timeout=10
    ) as resp:
        return int(json.loads(resp.read())["seq"])
