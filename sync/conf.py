"""The sync app's settings: every one read here, with its default.

A project sets any of them in its settings module; unset ones take the
defaults below. Read them as ``sync_settings.NAME`` at the moment of use (not
at import), so ``override_settings`` in tests and settings changed after
import both apply. :mod:`sync.checks` verifies the values at startup.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Change log: keep at most this many rows and rows no older than this; a
    # client resuming from before the oldest kept row gets "reset".
    "SYNC_CHANGELOG_MAX_ROWS": 10_000,
    "SYNC_CHANGELOG_MAX_AGE_SECS": 7 * 24 * 3600,
    # Every /ws/sync/ socket gets {"type":"heartbeat","seq":S} this often.
    "SYNC_HEARTBEAT_SECS": 15.0,
    # A handshake greets with the latest seq, confirmed in the database at
    # most this often per process (the change stream keeps it current between).
    "SYNC_SEQ_CACHE_SECS": 1.0,
    # Largest number of changes sent in one resume; older clients get "reset".
    "SYNC_RESUME_MAX_CHANGES": 5_000,
    # Longest wait for one broadcast through the channel layer before it is
    # counted as failed (clients then recover from the change log).
    "BROADCAST_TIMEOUT_SECS": 2.0,
    # Client frame limits of every protocol socket (sync.protocol).
    "WS_MAX_FRAME_BYTES": 4096,
    "WS_MAX_INVALID_FRAMES": 50,
}

#: Settings that must be positive numbers (checked by ``sync.E001``).
POSITIVE = tuple(DEFAULTS)


class SyncSettings:
    """The project's value of each sync setting, or its default."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"{name} is not a sync setting")
        return getattr(settings, name, DEFAULTS[name])


sync_settings = SyncSettings()
