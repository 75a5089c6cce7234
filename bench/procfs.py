"""What a process and the machine used, read from /proc: CPU seconds, RSS, busy time.

Times are ``time.monotonic()`` (CLOCK_MONOTONIC on Linux), comparable between
the load-client processes and the process that commits catalog changes.
"""

from __future__ import annotations

import os
import resource
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

now = time.monotonic


def raise_nofile(wanted: int = 65536) -> int:
    """Raise this process's open-file limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_cpu_secs(pid: int) -> float:
    """Return user+system CPU seconds of ``pid`` (its threads included)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid: int) -> int:
    """Return the resident set size of ``pid`` in KiB."""
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * PAGE_KIB


def named_cpu_secs(comm: str) -> float:
    """Return the CPU seconds of every process whose name is ``comm``."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        name = raw[raw.find("(") + 1 : raw.rfind(")")]
        if name == comm:
            fields = raw.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def machine_busy() -> tuple[float, float]:
    """Return (busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


class CpuMeter:
    """CPU used by a server, PostgreSQL, Redis and the machine over a window."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start()

    def start(self) -> None:
        self.t0 = now()
        self.server0 = proc_cpu_secs(self.pid)
        self.pg0 = named_cpu_secs("postgres")
        self.redis0 = named_cpu_secs("redis-server")
        self.busy0, self.total0 = machine_busy()

    def stop(self) -> dict[str, float]:
        busy, total = machine_busy()
        wall = now() - self.t0
        return {
            "wall_secs": round(wall, 3),
            "server_cpu_secs": round(proc_cpu_secs(self.pid) - self.server0, 3),
            "postgres_cpu_secs": round(named_cpu_secs("postgres") - self.pg0, 3),
            "redis_cpu_secs": round(named_cpu_secs("redis-server") - self.redis0, 3),
            "machine_busy_pct": round(
                100 * (busy - self.busy0) / max(1, total - self.total0), 1
            ),
        }
