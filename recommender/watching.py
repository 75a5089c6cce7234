"""The placements one recommendations socket watches, and their re-pushes.

A socket always shows ``for_you``; a client adds other lists with
``{"type":"watch","placement":P,"item":ID,"id":…}`` and drops them with
``unwatch``. :class:`Watches` keeps, per watched list, the version it sent
and what it showed, and re-ranks the lists when something they depend on
changes — the user's events (``complements``), a catalog edit, a staff rule
change, the passing of time (``trending``) — sending only lists that
changed. Refreshes are coalesced: while one runs, further reasons just mark
the lists due again. Ranking runs in worker threads through
:func:`~recommender.services.lists.placement_list`; this module only keeps
socket state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.db import DatabaseSyncToAsync

from recommender import messages
from recommender.services.lists import (
    UnknownPlacementItem,
    list_signature,
    placement_list,
    placement_list_refresh,
)
from recommender.services.placements import TRENDING_REFRESH_SECS
from sync import wire

logger = logging.getLogger(__name__)

#: Lists one socket may watch besides ``for_you``.
MAX_WATCHES = 8

_list = DatabaseSyncToAsync(placement_list, thread_sensitive=False)
_refreshed = DatabaseSyncToAsync(placement_list_refresh, thread_sensitive=False)

WatchKey = tuple[str, int | None]


@dataclass
class _Watched:
    version: int
    shown: tuple


class Watches:
    """The watched lists of one socket.

    Parameters
    ----------
    user_id : int
    send : callable
        Encodes one message and sends it on the socket.
    """

    def __init__(
        self, *, user_id: int, send: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None:
        self.user_id = user_id
        self.send = send
        self.lists: dict[WatchKey, _Watched] = {}
        self._due: set[WatchKey] = set()
        self._task: asyncio.Task | None = None
        self._clock: asyncio.Task | None = None

    async def watch(self, *, placement: str, item: int | None, client_id: str) -> None:
        """Start watching a list: send it now and whenever it changes."""
        key = (placement, item)
        if key not in self.lists and len(self.lists) >= MAX_WATCHES:
            raise wire.FrameError(
                wire.BAD_MESSAGE,
                f"at most {MAX_WATCHES} watched lists per socket",
                client_id,
            )
        watched = self.lists.get(key)
        version = watched.version + 1 if watched else 1
        try:
            message = await _list(
                user_id=self.user_id,
                placement=placement,
                item=item,
                version=version,
                shown=True,
            )
        except UnknownPlacementItem as exc:
            raise wire.FrameError(wire.UNKNOWN_ITEM, str(exc), client_id) from None
        await self.send(messages.ack(client_id=client_id))
        if placement != "for_you":
            self.lists[key] = _Watched(message["version"], list_signature(message))
        await self.send(message)
        if placement == "trending" and self._clock is None:
            self._clock = asyncio.create_task(self._tick())

    async def unwatch(self, *, placement: str, item: int | None, client_id: str):
        """Stop watching a list (unknown lists are fine: the end state holds)."""
        self.lists.pop((placement, item), None)
        self._due.discard((placement, item))
        await self.send(messages.ack(client_id=client_id))

    def soon(self, *placements: str) -> None:
        """Re-rank the watched lists of ``placements`` (all when none given)."""
        keys = {key for key in self.lists if not placements or key[0] in placements}
        if not keys:
            return
        self._due |= keys
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._refresh())

    async def _refresh(self) -> None:
        while self._due:
            key = self._due.pop()
            watched = self.lists.get(key)
            if watched is None:
                continue
            try:
                message = await _refreshed(
                    user_id=self.user_id,
                    placement=key[0],
                    item=key[1],
                    version=watched.version + 1,
                    shown=watched.shown,
                )
            except UnknownPlacementItem:
                # The item left the catalog: the list stays as it was shown.
                continue
            except Exception:
                logger.warning("refreshing %s failed", key, exc_info=True)
                continue
            if message is None or self.lists.get(key) is not watched:
                continue
            watched.version = message["version"]
            watched.shown = list_signature(message)
            await self.send(message)

    async def _tick(self) -> None:
        """Re-rank ``trending`` as shoppers come and go."""
        while any(key[0] == "trending" for key in self.lists):
            await asyncio.sleep(TRENDING_REFRESH_SECS)
            self.soon("trending")
        self._clock = None

    def close(self) -> None:
        """Stop every background refresh (the socket closed)."""
        self.lists.clear()
        self._due.clear()
        for task in (self._task, self._clock):
            if task is not None:
                task.cancel()
