"""Bounded polling: a hang is a failure, not a stuck suite."""

import time
from collections.abc import Callable

# Every wait of the harness is bounded by default.
WAIT_SECS = 20.0


def wait_for(
    predicate: Callable[[], bool], timeout: float = WAIT_SECS, step: float = 0.01
) -> float:
    """Poll ``predicate`` until it is true; return the seconds it took or raise.

    ``timeout`` and ``step`` are in seconds; ``TimeoutError`` when the
    condition does not hold within ``timeout``.
    """
    started = time.monotonic()
    deadline = started + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - started
