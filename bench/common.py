"""The old home of the benchmarks' helpers, split by job; re-exported here.

- bench/paths.py: where things are (ROOT, APP_ROOT, BENCH, RESULTS, PY);
- bench/procfs.py: CPU seconds, RSS and machine busy time from /proc;
- bench/servers.py: recsite and bare servers, through tests/support/servers.py;
- bench/database.py: the benchmark database and the change committer;
- bench/loadpool.py: load-client processes;
- tests/support/loadclient.py: the lean WebSocket client those processes use;
- bench/figures.py: latency summaries, tables, machine info, JSON results;
- bench/profiling.py: py-spy sampling and its summary.
"""

from bench.database import BenchDB, Committer
from bench.figures import (
    fmt,
    machine_info,
    print_table,
    ratio,
    summarize_ms,
    write_json,
)
from bench.loadpool import WorkerPool
from bench.paths import APP_ROOT, BENCH, PY, RESULTS, ROOT
from bench.procfs import (
    CpuMeter,
    machine_busy,
    named_cpu_secs,
    now,
    proc_cpu_secs,
    proc_rss_kib,
    raise_nofile,
)
from bench.profiling import Profiler, print_profile, summarize_profile
from bench.servers import Server, base_env, recsite_env, start_bare, start_recsite
from tests.support.loadclient import WSClient, connect_many, ws_connect
from tests.support.servers import free_port

__all__ = [
    "APP_ROOT",
    "BENCH",
    "PY",
    "RESULTS",
    "ROOT",
    "BenchDB",
    "Committer",
    "CpuMeter",
    "Profiler",
    "Server",
    "WSClient",
    "WorkerPool",
    "base_env",
    "connect_many",
    "fmt",
    "free_port",
    "machine_busy",
    "machine_info",
    "named_cpu_secs",
    "now",
    "print_profile",
    "print_table",
    "proc_cpu_secs",
    "proc_rss_kib",
    "raise_nofile",
    "ratio",
    "recsite_env",
    "start_bare",
    "start_recsite",
    "summarize_ms",
    "summarize_profile",
    "write_json",
    "ws_connect",
]
