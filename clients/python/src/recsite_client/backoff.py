"""Reconnect delays: exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays before reconnect attempt ``n`` (0-based), in seconds.

    Attempt ``n`` waits a uniformly random time in
    ``[0, min(cap, base * 2**n)]`` ("full jitter"): after a server restart
    thousands of clients spread their reconnects out instead of arriving
    together.
    """

    base: float = 0.25
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        """Return the seconds to wait before reconnect attempt ``attempt``."""
        ceiling = min(self.cap, self.base * 2 ** min(attempt, 30))
        return random.uniform(0, ceiling)
