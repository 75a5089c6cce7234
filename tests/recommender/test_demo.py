"""The demo shop: unique titles, determinism, sessions that read like shopping."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

import numpy as np
import pytest
from django.utils import timezone

from recommender.models import BrowsingEvent, Item
from recommender.services.demo import RECORD_MAX_ITEMS, SEED, demo_seed
from recommender.services.demo_catalog import DEPARTMENTS, demo_catalog
from sync.models import Change
from sync.selectors import changes_after, seq_latest

NOUN_DEPARTMENT = {noun: d.name for d in DEPARTMENTS for noun in d.nouns}


def kind_of(title: str) -> str:
    """Return the product kind ("Headphones") a demo title ends with."""
    return next(noun for noun in NOUN_DEPARTMENT if title.endswith(" " + noun))


def test_titles_are_unique_at_any_size_and_say_what_the_item_is():
    assert len(NOUN_DEPARTMENT) == 6 * len(DEPARTMENTS), "a noun names one department"
    for n_items in (600, 10_000, 60_000):
        shop = demo_catalog(n_items=n_items, rng=np.random.default_rng(SEED))
        assert len(set(shop.titles)) == n_items, n_items
    shop = demo_catalog(n_items=600, rng=np.random.default_rng(SEED))
    for i in range(600):
        department = DEPARTMENTS[shop.department[i]]
        title = shop.titles[i]
        assert title.endswith(" " + department.nouns[shop.noun[i]])
        tags = shop.tags[i].split(", ")
        assert set(tags) <= set(department.adjectives)
        assert len(tags) == len(set(tags))
        assert department.nouns[shop.noun[i]].lower() in shop.descriptions[i]
    # Every department's kinds of product show up in a small demo too.
    kinds = Counter(kind_of(t) for t in shop.titles)
    assert len(kinds) == len(NOUN_DEPARTMENT)


def test_same_seed_same_catalog():
    a = demo_catalog(n_items=3000, rng=np.random.default_rng(SEED))
    b = demo_catalog(n_items=3000, rng=np.random.default_rng(SEED))
    assert a.titles == b.titles and a.tags == b.tags
    assert np.array_equal(a.price, b.price) and np.array_equal(a.rating, b.rating)
    c = demo_catalog(n_items=3000, rng=np.random.default_rng(SEED + 1))
    assert c.titles != a.titles


def _events() -> list[tuple[int, str, str, str, float]]:
    """Return (user, title, department, action, epoch secs) per event, in time order."""
    return [
        (user_id, title, category, action, created.timestamp())
        for user_id, title, category, action, created in BrowsingEvent.objects.order_by(
            "user_id", "created", "id"
        ).values_list(
            "user_id", "item__title", "item__category__name", "action", "created"
        )
    ]


def _sessions(events: list[tuple[int, str, str, str, float]]) -> list[list[tuple]]:
    """Split each shopper's events where more than 30 minutes pass."""
    sessions: list[list[tuple]] = []
    for event in events:
        last = sessions[-1][-1] if sessions else None
        if last and last[0] == event[0] and event[4] - last[4] < 30 * 60:
            sessions[-1].append(event)
        else:
            sessions.append([event])
    return sessions


@pytest.mark.django_db(transaction=True)
def test_shoppers_browse_a_kind_of_product_then_a_complement():
    counts = demo_seed(n_items=600, n_users=40)
    assert counts["items"] == 600 and counts["users"] == 40
    titles = list(Item.objects.values_list("title", flat=True))
    assert len(set(titles)) == 600
    sessions = _sessions(_events())
    assert len({s[0][0] for s in sessions}) == 40, "every shopper has a history"
    assert len(sessions) >= 40 * 3
    # A session opens by comparing items of one kind (several headphones).
    opening_same_kind = sum(
        len(s) >= 2 and kind_of(s[0][1]) == kind_of(s[1][1]) for s in sessions
    )
    assert opening_same_kind >= 0.85 * len(sessions)
    # When it moves to another department, it is mostly to a complement
    # (a kettle, then coffee beans), not anywhere at random.
    complements = {d.name: set(d.complements) for d in DEPARTMENTS}
    moves = [(a[2], b[2]) for s in sessions for a, b in pairwise(s) if a[2] != b[2]]
    assert moves
    to_complement = sum(b in complements[a] for a, b in moves)
    assert to_complement >= 0.5 * len(moves), (to_complement, len(moves))
    # A funnel: views outnumber clicks, which outnumber carts and purchases.
    actions = Counter(e[3] for e in _events())
    assert actions["view"] > actions["click"] > actions["purchase"] > 0
    assert actions["cart"] > actions["purchase"]
    # Events are in the past, within the demo's month.
    newest = BrowsingEvent.objects.latest("created").created
    oldest = BrowsingEvent.objects.earliest("created").created
    assert newest - oldest < timedelta(days=31)


@pytest.mark.django_db(transaction=True)
def test_reseeding_gives_the_same_shop_and_histories():
    demo_seed(n_items=300, n_users=12)
    first = (list(Item.objects.order_by("id").values_list("title", "price", "tags")),)
    history = [(e[1], e[3]) for e in _events()]
    demo_seed(n_items=300, n_users=12)
    assert Item.objects.count() == 300, "an existing demo is left as it is"
    Item.objects.all().delete()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username__startswith="shopper").delete()
    demo_seed(n_items=300, n_users=12)
    assert (
        list(Item.objects.order_by("id").values_list("title", "price", "tags")),
    ) == first
    assert [(e[1], e[3]) for e in _events()] == history


@pytest.mark.django_db(transaction=True)
def test_a_large_seed_leaves_one_reset_point_instead_of_a_change_per_item():
    before = seq_latest()
    n_items = RECORD_MAX_ITEMS + 200
    demo_seed(n_items=n_items, n_users=3)
    assert Item.objects.count() == n_items
    assert not Change.objects.filter(model="item").exists()
    assert seq_latest() == before + 1
    plan = changes_after(after=before, limit=10_000)
    assert plan.reset and plan.seq == before + 1, "a client from before reloads"
    assert not changes_after(after=seq_latest(), limit=10_000).reset


@pytest.mark.django_db(transaction=True)
def test_a_large_seed_writes_the_generated_catalog_row_for_row():
    # Above RECORD_MAX_ITEMS PostgreSQL gets the rows as COPY text; the stored
    # values must be the generator's, as the per-object path stores them.
    n_items = RECORD_MAX_ITEMS + 300
    demo_seed(n_items=n_items, n_users=2)
    shop = demo_catalog(n_items=n_items, rng=np.random.default_rng(SEED))
    rows = list(
        Item.objects.order_by("id").values_list(
            "external_id",
            "title",
            "description",
            "tags",
            "price",
            "rating",
            "category__name",
            "year",
            "active",
            "created",
        )
    )
    assert [r[0] for r in rows] == [f"demo:{i + 1}" for i in range(n_items)]
    now = timezone.now()
    for i, (
        _,
        title,
        description,
        tags,
        price,
        rating,
        category,
        year,
        active,
        at,
    ) in enumerate(rows):
        assert (title, description, tags) == (
            shop.titles[i],
            shop.descriptions[i],
            shop.tags[i],
        )
        assert price == Decimal(f"{shop.price[i]:.2f}")
        assert rating == float(shop.rating[i])
        assert category == DEPARTMENTS[shop.department[i]].name
        assert active and at <= now
        age_days = (now - at).total_seconds() / 86_400
        assert abs(age_days - shop.age_days[i]) < 1 / 24
        assert year == now.year - min(int(shop.age_days[i] // 365), 20)
