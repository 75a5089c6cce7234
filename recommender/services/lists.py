"""The list a socket or an API call asks for, by placement.

``for_you`` is the user's stored, versioned snapshot (see
:mod:`recommender.services.recommendations`). The other placements are
ranked on demand (:func:`~recommender.services.ranking.placement_rank`) and
not stored; a list that goes to an open socket is recorded as impressions
with its placement and variant, for the online figures.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from recommender import messages
from recommender.db import rows_insert
from recommender.engine.placements import DEFAULT_PLACEMENT, ITEM_PLACEMENTS
from recommender.models import Impression
from recommender.services.live import live
from recommender.services.placements import PlacementList, UnknownPlacementItem
from recommender.services.ranking import placement_rank
from recommender.services.recommendations import recommendations_current

__all__ = [
    "UnknownPlacementItem",
    "list_signature",
    "placement_list",
    "placement_list_refresh",
]

_IMPRESSION_COLUMNS = [
    ("user_id", "bigint"),
    ("item_id", "bigint"),
    ("version", "integer"),
    ("position", "integer"),
    ("shown_at", "timestamptz"),
    ("placement", "text"),
    ("variant_id", "bigint"),
]


def placement_list(
    *,
    user_id: int | None,
    placement: str = DEFAULT_PLACEMENT,
    item: int | None = None,
    version: int = 0,
    shown: bool = False,
) -> messages.RecommendationsMessage:
    """Return the list of ``placement`` (about ``item``) for a user, as sent.

    Parameters
    ----------
    user_id : int or None
        None only for placements that do not depend on the user.
    placement : str
    item : int or None
        The item ``similar`` is about; for ``complements``, instead of the
        user's basket. Ignored by ``for_you`` and ``trending``.
    version : int
        Version the message carries for placements other than ``for_you``
        (whose version is its snapshot's); a socket counts its own.
    shown : bool
        The list goes to an open socket: record its impressions.

    Raises
    ------
    UnknownPlacementItem
        ``item`` is not an active catalog item, or ``similar`` has none.
    """
    if placement == DEFAULT_PLACEMENT:
        if user_id is None:
            raise ValueError("for_you is a user's own list")
        return recommendations_current(user_id=user_id, shown=shown)
    message, ranked = _ranked(
        user_id=user_id, placement=placement, item=item, version=version
    )
    if shown and user_id is not None:
        placement_impressions_record(user_id=user_id, ranked=ranked, version=version)
    return message


def placement_list_refresh(
    *,
    user_id: int,
    placement: str,
    item: int | None,
    version: int,
    shown: tuple,
) -> messages.RecommendationsMessage | None:
    """Re-rank a watched list; return it if it changed (recorded as shown).

    ``shown`` is the :func:`list_signature` of what the socket shows; None
    comes back when the new list would look the same.

    Raises
    ------
    UnknownPlacementItem
    """
    message, ranked = _ranked(
        user_id=user_id, placement=placement, item=item, version=version
    )
    if list_signature(message) == shown:
        return None
    placement_impressions_record(user_id=user_id, ranked=ranked, version=version)
    return message


def list_signature(message: messages.RecommendationsMessage) -> tuple:
    """Return what a person sees of a list: its items in order, their reasons."""
    return tuple((entry["id"], tuple(entry["reasons"])) for entry in message["items"])


def _ranked(
    *, user_id: int | None, placement: str, item: int | None, version: int
) -> tuple[messages.RecommendationsMessage, PlacementList]:
    """Rank a placement other than ``for_you``; return its message and list."""
    about = item if placement in ITEM_PLACEMENTS else None
    state = live.engine.current()
    history = (
        live.histories.histories([user_id])[user_id]
        if placement == "complements" and about is None and user_id is not None
        else None
    )
    ranked = placement_rank(
        engine=state.engine,
        user_id=user_id,
        placement=placement,
        item=about,
        history=history,
        k=settings.RECS_LIST_LENGTH,
    )
    message = messages.recommendations(
        version=version,
        items=ranked.items,
        computed_ms=ranked.computed_ms,
        placement=placement,
        item=about,
    )
    return message, ranked


def placement_impressions_record(
    *, user_id: int, ranked: PlacementList, version: int
) -> None:
    """Record each item of a placement list shown on a socket, in one INSERT."""
    shown_at = Impression._meta.get_field("shown_at").get_db_prep_save(
        timezone.now(), connection
    )
    if isinstance(shown_at, datetime):
        shown_at = shown_at.isoformat()
    rows_insert(
        table=Impression._meta.db_table,
        columns=_IMPRESSION_COLUMNS,
        rows=[
            [
                user_id,
                entry["id"],
                version,
                rank,
                shown_at,
                ranked.placement,
                ranked.variant_id,
            ]
            for rank, entry in enumerate(ranked.items, start=1)
        ],
    )
