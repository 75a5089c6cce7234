"""Import a MovieLens directory (either format) into the database.

Reading and the rating-to-action mapping live in ``movielens.py``; this module
writes categories, items, users and browsing events from what it reads.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.engine import ACTION_WEIGHTS
from recommender.services.movielens import (
    movielens_catalog,
    movielens_read,
    rating_actions,
)


@dataclass(frozen=True)
class ImportResult:
    """What one ``movielens_import`` run created (zero on a rerun)."""

    categories: int
    items: int
    users: int
    events: int
    seconds: float


def _join_tags(tags: list[str], limit: int) -> str:
    """Return ``tags`` comma-joined, dropping whole tags beyond ``limit`` chars."""
    out: list[str] = []
    size = 0
    for tag in tags:
        tag = tag.replace(",", " ").strip()
        if tag and size + len(tag) + 2 <= limit:
            out.append(tag)
            size += len(tag) + 2
    return ", ".join(out)


def movielens_import(
    directory: Path | str,
    *,
    batch_size: int = 5000,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Import a MovieLens directory (either format) into the database.

    Creates categories (genres), items (``external_id = "ml:<movieId>"``),
    users (``ml<userId>``, unusable password) and one browsing event per
    rating (``client_id = "ml:<user>:<item>"``, created at the rating time,
    action and weight from the star rating). Rows that already exist are left
    alone, so a rerun creates nothing. Item creations reach the sync change
    log in the same transaction.

    Parameters
    ----------
    directory : path
    batch_size : int
        Rows per INSERT.
    progress : callable, optional
        Called with a short message at each stage.

    Returns
    -------
    ImportResult
    """
    # Django is imported here, not at module level, so the parsing and the
    # offline evaluation above stay usable without configured settings.
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from recommender.models import BrowsingEvent, Category, Item
    from recommender.serializers import item_to_dict
    from sync.services import changes_record

    say = progress or (lambda _: None)
    started = time.perf_counter()
    data = movielens_read(directory)
    say(
        f"read {data.format} data: {data.movie_ids.size} movies, "
        f"{data.ratings.size} ratings, {data.users.size} users"
    )
    catalog = movielens_catalog(data)

    # Categories ----------------------------------------------------------
    existing_cats = set(Category.objects.values_list("name", flat=True))
    new_cats = [
        Category(name=n) for n in catalog.category_names if n not in existing_cats
    ]
    Category.objects.bulk_create(new_cats, ignore_conflicts=True)
    cat_pk = dict(Category.objects.values_list("name", "id"))

    # Items -----------------------------------------------------------------
    have_items = set(
        Item.objects.filter(external_id__startswith="ml:").values_list(
            "external_id", flat=True
        )
    )
    first_seen: dict[int, float] = {}
    if data.item_ids.size:
        order = np.argsort(data.timestamps, kind="stable")[::-1]
        first_seen = dict(
            zip(
                data.item_ids[order].tolist(),
                data.timestamps[order].tolist(),
                strict=True,
            )
        )
    now = timezone.now()
    new_items = []
    for row, movie in enumerate(catalog.ids.tolist()):
        ext = f"ml:{movie}"
        if ext in have_items:
            continue
        created = catalog.created[row]
        if not np.isfinite(created):
            created = first_seen.get(movie, float("nan"))
        cat = catalog.category[row]
        year = catalog.year[row]
        new_items.append(
            Item(
                title=catalog.titles[row][:255],
                category_id=cat_pk[catalog.category_names[cat]] if cat >= 0 else None,
                tags=_join_tags(catalog.tags[row], 500),
                price=0,
                rating=round(float(catalog.rating[row]), 3),
                year=int(year) if np.isfinite(year) else None,
                external_id=ext,
                created=(
                    dt.datetime.fromtimestamp(created, tz=dt.UTC)
                    if np.isfinite(created)
                    else now
                ),
            )
        )
    if new_items:
        say(f"creating {len(new_items)} items")
        with transaction.atomic():
            Item.objects.bulk_create(
                new_items, batch_size=batch_size, ignore_conflicts=True
            )
            wanted = {item.external_id for item in new_items}
            # Re-read: ignore_conflicts leaves primary keys unset on some backends.
            created_items = [
                item
                for item in Item.objects.filter(external_id__startswith="ml:")
                .select_related("category")
                .order_by("id")
                if item.external_id in wanted
            ]
            changes_record(
                model_name="item",
                changes=[
                    ("upsert", str(item.pk), item_to_dict(item))
                    for item in created_items
                ],
            )
    item_pk = dict(
        Item.objects.filter(external_id__startswith="ml:").values_list(
            "external_id", "id"
        )
    )

    # Users ---------------------------------------------------------------
    user_model = get_user_model()
    wanted_users = {
        f"ml{u}" for u in np.unique(np.r_[data.users, data.user_ids]).tolist()
    }
    have_users = set(
        user_model.objects.filter(username__in=wanted_users).values_list(
            "username", flat=True
        )
    )
    new_users = [
        user_model(username=name, password=make_password(None))
        for name in sorted(wanted_users - have_users)
    ]
    if new_users:
        say(f"creating {len(new_users)} users")
        user_model.objects.bulk_create(
            new_users, batch_size=batch_size, ignore_conflicts=True
        )
    user_pk = dict(
        user_model.objects.filter(username__in=wanted_users).values_list(
            "username", "id"
        )
    )

    # Events --------------------------------------------------------------
    have_events = set(
        BrowsingEvent.objects.filter(client_id__startswith="ml:").values_list(
            "client_id", flat=True
        )
    )
    actions = rating_actions(data.ratings)
    total = data.ratings.size
    n_events = 0
    batch: list = []
    for n, (user, movie, action, stamp) in enumerate(
        zip(
            data.user_ids.tolist(),
            data.item_ids.tolist(),
            actions,
            data.timestamps.tolist(),
            strict=True,
        )
    ):
        client_id = f"ml:{user}:{movie}"
        item_id = item_pk.get(f"ml:{movie}")
        if client_id in have_events or item_id is None:
            continue
        have_events.add(client_id)
        batch.append(
            BrowsingEvent(
                user_id=user_pk[f"ml{user}"],
                item_id=item_id,
                action=action,
                weight=ACTION_WEIGHTS[action],
                client_id=client_id,
                created=dt.datetime.fromtimestamp(stamp, tz=dt.UTC),
            )
        )
        if len(batch) >= batch_size or n == total - 1:
            BrowsingEvent.objects.bulk_create(
                batch, batch_size=batch_size, ignore_conflicts=True
            )
            n_events += len(batch)
            batch = []
            say(f"events {n + 1}/{total}")
    if batch:
        BrowsingEvent.objects.bulk_create(
            batch, batch_size=batch_size, ignore_conflicts=True
        )
        n_events += len(batch)
    return ImportResult(
        categories=len(new_cats),
        items=len(new_items),
        users=len(new_users),
        events=n_events,
        seconds=time.perf_counter() - started,
    )
