"""Helpers of the fault tests: a third writing process, and the shared harness.

The servers, clients, Redis and nginx these tests break live in
``tests/support/`` (the one harness, shared with ``bench/``) and are
importable from here under their old names.
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.accounts import AdminSession
from tests.support.env import ROOT
from tests.support.infra import NGINX_TEST_CONF, Nginx, RedisServer
from tests.support.recs_client import EventClient, EventOutcome
from tests.support.servers import Servers
from tests.support.sockets import recv_type
from tests.support.sync_client import SyncClient, SyncStats, items_snapshot
from tests.support.waiting import WAIT_SECS, wait_for

__all__ = [
    "NGINX_TEST_CONF",
    "WAIT_SECS",
    "AdminSession",
    "EventClient",
    "EventOutcome",
    "Nginx",
    "RedisServer",
    "Servers",
    "ShellWriter",
    "SyncClient",
    "SyncStats",
    "items_snapshot",
    "recv_type",
    "wait_for",
]


class ShellWriter:
    """``manage.py shell`` renaming items until told to stop: a third writing process.

    The process starts at once (Django's start-up is slow on a busy machine)
    but writes only after :meth:`go`, one rename every ``interval`` seconds,
    until :meth:`finish`. It prints one line per committed write; a write must
    never fail because the channel layer is down.
    """

    def __init__(self, item_ids: list[int], workdir: Path, interval: float, env: dict):
        stamp = time.monotonic_ns()
        self.go_file = workdir / f"writer-go-{stamp}"
        self.stop_file = workdir / f"writer-stop-{stamp}"
        code = (
            "import os, time\n"
            "from recommender.models import Item\n"
            "from sync.selectors import seq_latest\n"
            "print('ready', flush=True)\n"
            f"while not os.path.exists({str(self.go_file)!r}):\n"
            "    time.sleep(0.01)\n"
            f"ids = {item_ids!r}\n"
            "n = 0\n"
            f"while not os.path.exists({str(self.stop_file)!r}):\n"
            "    item = Item.objects.get(pk=ids[n % len(ids)])\n"
            "    item.title = f'written {n}'\n"
            "    item.save()\n"
            "    print('wrote', n, flush=True)\n"
            "    n += 1\n"
            f"    time.sleep({interval})\n"
        )
        self.ready = threading.Event()
        self.written = 0
        # Failed broadcasts are logged with tracebacks: to a file, not a pipe
        # that could fill up and block the writer.
        self.log_path = workdir / f"writer-{stamp}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in finish/kill
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("wrote "):
                self.written += 1
            elif line.startswith("ready"):
                self.ready.set()

    def go(self, timeout: float = 60) -> None:
        """Start writing once the process is up; return after the first writes."""
        wait_for(
            lambda: self.ready.is_set() or self.process.poll() is not None, timeout
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"writer exited: {self.log_path.read_text()[-3000:]}")
        self.go_file.touch()
        wait_for(lambda: self.written >= 3 or self.process.poll() is not None, 30)

    def finish(self) -> int:
        """Stop writing; return how many writes committed."""
        self.go_file.touch()
        self.stop_file.touch()
        self.process.wait(timeout=30)
        self._reader.join(timeout=5)
        self._log.close()
        assert self.process.returncode == 0, self.log_path.read_text()[-3000:]
        return self.written

    def broadcast_failures(self) -> int:
        """Return how many failed broadcasts the writer logged."""
        return self.log_path.read_text().count("broadcast of changes")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
