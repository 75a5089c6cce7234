"""Pushing lists to every socket of their users, in every server process."""

import logging
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.conf import settings

from recommender import messages, signals
from recommender.services.live import live
from sync.layer import bounded, group_send_many
from sync.wire import encode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Push:
    """A list to send to every socket of a user, encoded once."""

    user_id: int
    text: str
    version: int
    origin: str | None = None  # the channel that already sent it directly


def push_of(
    *,
    user_id: int,
    message: messages.RecommendationsMessage,
    origin: str | None = None,
) -> Push:
    """Return the push of ``message`` to the user's sockets, encoded once."""
    return Push(user_id, encode(message), message["version"], origin)


def recommendations_push(
    *, user_id: int, message: messages.RecommendationsMessage, origin: str | None = None
) -> None:
    """Send a list to every socket of the user (except ``origin``); never raise."""
    pushes_send(pushes=[push_of(user_id=user_id, message=message, origin=origin)])


def pushes_send(*, pushes: list[Push]) -> None:
    """Send lists to their users' sockets from synchronous code; never raise."""
    if pushes:
        async_to_sync(recommendations_push_async)(pushes=pushes)


async def recommendations_push_async(*, pushes: list[Push]) -> None:
    """Send lists to their users' sockets in every process, in one round trip.

    Never raises: a failed push is reported (:data:`signals.push_failed`) and
    logged, and the sockets it missed show the list when they next reconnect
    or get a newer one.
    """
    if not pushes:
        return
    envelopes = [
        (
            messages.user_group(push.user_id),
            messages.layer_recs(
                text=push.text,
                version=push.version,
                origin=push.origin,
                process=live.process_id,
            ),
        )
        for push in pushes
    ]
    try:
        await bounded(
            group_send_many(envelopes), timeout_secs=settings.BROADCAST_TIMEOUT_SECS
        )
    except Exception:
        user_ids = sorted({push.user_id for push in pushes})
        signals.push_failed.send(sender=Push, user_ids=user_ids)
        logger.warning(
            "push to users %s failed; their sockets refresh on reconnect",
            user_ids,
            exc_info=True,
        )
