"""Token buckets for per-connection and per-user event rate limits."""

import time


class TokenBucket:
    """Allow ``rate_per_sec`` on average with bursts of up to ``burst``."""

    __slots__ = ("burst", "rate_per_sec", "stamp", "tokens")

    def __init__(self, *, rate_per_sec: float, burst: int) -> None:
        self.rate_per_sec = rate_per_sec
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(
            self.burst, self.tokens + (now - self.stamp) * self.rate_per_sec
        )
        self.stamp = now

    def retry_after_secs(self) -> float:
        """Return how long until one token is available (0 if one is now)."""
        self._refill()
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_sec

    def take(self) -> None:
        """Spend one token (check ``retry_after_secs`` first)."""
        self.tokens -= 1.0


def take_all(buckets: list[TokenBucket]) -> float:
    """Spend one token from every bucket, or none; return the wait if refused."""
    wait = max(bucket.retry_after_secs() for bucket in buckets)
    if wait > 0:
        return wait
    for bucket in buckets:
        bucket.take()
    return 0.0
