"""Reads of a shopper's recent activity, for the dashboard's activity strip."""

from typing import Any

from recommender.models import BrowsingEvent


def activity_recent(*, user_id: int, limit: int) -> list[dict[str, Any]]:
    """Return the user's latest ``limit`` events, newest first.

    Each is ``{"id": client id, "action", "item", "title", "created"}``
    (``created`` an aware datetime); the client id is the one the page sent,
    so a tab can match its own pending entries with stored ones.
    """
    rows = (
        BrowsingEvent.objects.filter(user_id=user_id)
        .order_by("-created", "-id")
        .values_list("client_id", "action", "item_id", "item__title", "created")[:limit]
    )
    return [
        {
            "id": client_id,
            "action": action,
            "item": item,
            "title": title,
            "created": created,
        }
        for client_id, action, item, title, created in rows
    ]
