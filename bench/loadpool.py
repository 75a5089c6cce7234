"""Load-client processes: each holds a share of the sockets and answers commands."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Callable
from typing import Any


class WorkerPool:
    """Load-client processes, each holding a share of the sockets.

    Each worker runs ``target(pipe, *args)``, sends one hello (with at least
    ``connected``) once its sockets are open, then answers commands sent on
    its pipe; ``("stop",)`` ends it.
    """

    def __init__(
        self, target: Callable[..., None], shares: list[tuple], *, hello_secs: float
    ) -> None:
        ctx = mp.get_context("fork")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        for args in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=target, args=(child, *args), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.hello = [self.recv(p, hello_secs) for p in self.pipes]

    @staticmethod
    def recv(pipe: Any, timeout_secs: float) -> Any:
        """Return the worker's next answer, or raise after ``timeout_secs``."""
        if not pipe.poll(timeout_secs):
            raise TimeoutError("load client did not answer")
        return pipe.recv()

    @property
    def connected(self) -> int:
        return sum(h["connected"] for h in self.hello)

    def ask(self, *cmd: Any, timeout_secs: float = 120) -> list[Any]:
        """Send ``cmd`` to every worker and return their answers."""
        for p in self.pipes:
            p.send(cmd)
        return [self.recv(p, timeout_secs) for p in self.pipes]

    def close(self) -> None:
        # The processes are killed below if they do not stop.
        with contextlib.suppress(Exception):
            self.ask("stop", timeout_secs=20)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
