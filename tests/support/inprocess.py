"""A daphne server in a thread of the test process, for the end-to-end tests.

The browser tests write through the ORM in the test process and expect the
broadcast to reach the page. Without Redis the channel layer is in memory,
one per process, so the server must live in the test process itself; the
other tests start ``manage.py serve`` processes (``servers.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

START_TIMEOUT_SECS = 15.0


class ThreadedDaphne:
    """Daphne serving ``application`` on a free port of 127.0.0.1, in a thread."""

    def __init__(self, application: Any) -> None:
        # Import daphne.server before anything imports twisted's default reactor.
        from daphne.server import Server

        self.server = Server(
            application=application,
            endpoints=["tcp:port=0:interface=127.0.0.1"],
            signal_handlers=False,
            verbosity=0,
        )
        self.failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._serve, name="daphne", daemon=True)

    def start(self, timeout_secs: float = START_TIMEOUT_SECS) -> str:
        """Start serving; return the base URL once daphne listens."""
        self.thread.start()
        deadline = time.monotonic() + timeout_secs
        while not self.server.listening_addresses:
            if self.failure or not self.thread.is_alive():
                raise RuntimeError(f"daphne did not start: {self.failure!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("daphne did not start listening in time")
            time.sleep(0.02)
        host, port = self.server.listening_addresses[0]
        return f"http://{host}:{port}"

    def stop(self, timeout_secs: float = 15) -> None:
        """Stop the reactor and wait for the thread to end."""
        from twisted.internet import reactor

        reactor.callFromThread(self.server.stop)
        self.thread.join(timeout=timeout_secs)

    def _serve(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # reported to the main thread
            self.failure.append(exc)
        finally:
            from twisted.internet import reactor

            loop = getattr(reactor, "_asyncioEventloop", None)
            # Cancel what the applications left running and close the loop, or
            # Python 3.11 may crash at exit finalising a half-dead loop.
            if loop is not None and not loop.is_closed():
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(
                        asyncio.gather(*pending, return_exceptions=True)
                    )
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
