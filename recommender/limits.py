"""Abuse limits of the recommendation sockets: event rates and socket slots.

Token buckets limit events per connection and per user; :class:`UserSlots`
caps a user's open sockets in this process and holds the per-user bucket
their sockets share.
"""

import time
from dataclasses import dataclass

from django.conf import settings


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


def socket_bucket() -> TokenBucket:
    """Return a fresh bucket for one socket's events (``WS_EVENT_*``)."""
    return TokenBucket(
        rate_per_sec=settings.WS_EVENT_RATE_PER_SEC, burst=settings.WS_EVENT_BURST
    )


@dataclass
class _UserSlot:
    """What the sockets of one user in this process share."""

    bucket: TokenBucket
    sockets: int = 0


class UserSlots:
    """Open sockets and the shared event bucket of each user in this process.

    A user holds a slot while at least one of their sockets is open; the
    slot (and its bucket) goes with the last one.
    """

    def __init__(self) -> None:
        self._slots: dict[int, _UserSlot] = {}

    def acquire(self, user_id: int) -> bool:
        """Take one of the user's ``WS_MAX_SOCKETS_PER_USER`` slots; False if none is free."""
        slot = self._slots.get(user_id)
        if slot is None:
            slot = self._slots[user_id] = _UserSlot(
                bucket=TokenBucket(
                    rate_per_sec=settings.WS_USER_EVENT_RATE_PER_SEC,
                    burst=settings.WS_USER_EVENT_BURST,
                )
            )
        if slot.sockets >= settings.WS_MAX_SOCKETS_PER_USER:
            return False
        slot.sockets += 1
        return True

    def release(self, user_id: int) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        slot = self._slots.get(user_id)
        if slot is None:
            return
        slot.sockets -= 1
        if slot.sockets <= 0:
            del self._slots[user_id]

    def take(self, user_id: int, bucket: TokenBucket) -> float:
        """Spend one event from the socket's ``bucket`` and the user's; return the wait if refused."""
        return take_all([bucket, self._slots[user_id].bucket])


#: This process's slots (sockets are per process, so are their limits).
user_slots = UserSlots()
