"""Placement scoring on tiny hand-made catalogs, checked against brute force."""

import time
from datetime import timedelta

import numpy as np
import pytest
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from django.utils import timezone

from recommender.engine import Behaviour, Engine, History
from recommender.engine.placements import (
    basket_rows,
    complement_scores,
    complements_fit,
    similar_scores,
    strongest_source,
    trending_scores,
)
from recommender.engine.rules import CompiledRules, RuleCatalog, RuleSpec, rules_compile
from recommender.models import BrowsingEvent, Category, Rule
from recommender.selectors import interactions_all
from recommender.services.catalog import catalog_load
from recommender.services.placements import (
    PlacementData,
    UnknownPlacementItem,
    complements_load,
    placement_data,
    placement_score,
    trending_counts,
)
from recommender.services.ranking import placement_rank, shared_lists
from recommender.services.rules import merchandising
from tests.factories import catalog


def _unit_rows(dense: np.ndarray) -> sp.csr_matrix:
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return sp.csr_matrix((dense / norms).astype(np.float32))


def test_similar_puts_behavioural_neighbours_first_then_content() -> None:
    # Item 0's behavioural neighbours: 3 strongly, 4 weakly, 5 negatively.
    neighbours = sp.csr_matrix(
        (
            np.array([0.8, 0.2, -0.5], dtype=np.float32),
            (np.array([0, 0, 0]), np.array([3, 4, 5])),
        ),
        shape=(6, 6),
    )
    # Content: items 1 and 2 look like item 0, item 3 not at all.
    features = _unit_rows(
        np.array(
            [[1, 0, 0], [1, 0.1, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]],
            dtype=np.float32,
        )
    )
    scores, behaviour, content = similar_scores(
        0, neighbours=neighbours, features=features, content_weight=0.1
    )
    assert scores[0] == -np.inf
    assert np.argsort(-scores)[:4].tolist() == [3, 4, 1, 2]
    dense = features.toarray()
    assert content == pytest.approx(dense @ dense[0])
    assert behaviour.tolist() == pytest.approx([0, 0, 0, 1, 0.25, 0])
    # An item nobody has touched yet: content alone orders the list.
    scores, behaviour, _ = similar_scores(
        2, neighbours=neighbours, features=features, content_weight=0.1
    )
    assert not behaviour.any()
    assert np.argsort(-scores)[:2].tolist() == [1, 0]


def test_complements_are_cosines_of_who_carted_what_pruned_per_row() -> None:
    users = np.array([1, 1, 2, 2, 2, 3, 3, 4, 1])
    rows = np.array([0, 1, 0, 1, 2, 0, 3, 3, 0])  # user 1 carted item 0 twice
    model = complements_fit(users, rows, 5, keep=2)
    x = np.zeros((4, 5))
    for u, r in zip(users, rows, strict=True):
        x[u - 1, r] = 1
    co = x.T @ x
    counts = np.diag(co).copy()
    np.fill_diagonal(co, 0)
    cosine = co / np.sqrt(np.outer(counts, counts).clip(min=1))
    dense = model.toarray()
    for row in range(5):
        kept = np.flatnonzero(dense[row])
        best = np.argsort(-cosine[row], kind="stable")[: len(kept)]
        assert len(kept) <= 2
        assert set(kept) == {c for c in best if cosine[row, c] > 0}
        assert dense[row, kept] == pytest.approx(cosine[row, kept])
    assert complements_fit(np.array([1]), np.array([-1]), 3).nnz == 0


def test_complements_follow_the_basket_and_name_the_item_behind_each() -> None:
    complements = sp.csr_matrix(
        np.array(
            [
                [0, 0, 0.9, 0, 0],
                [0, 0, 0, 0.6, 0],
                [0.9, 0, 0, 0, 0],
                [0, 0.6, 0, 0, 0],
                [0, 0, 0, 0, 0],
            ],
            dtype=np.float32,
        )
    )
    neighbours = sp.csr_matrix(
        np.array(
            [[0, 0, 0, 0, 1.0]] + [[0] * 5] * 4,
            dtype=np.float32,
        )
    )
    basket = np.array([1, 0])  # item 1 most recent
    scores, links = complement_scores(
        basket, complements=complements, neighbours=neighbours, fallback_weight=0.05
    )
    assert scores[0] == scores[1] == -np.inf
    # Item 0 is older in the basket: its 0.9 weighs 0.9 * 2^(-1/3).
    assert scores[2] == pytest.approx(0.9 * 2 ** (-1 / 3))
    assert scores[3] == pytest.approx(0.6)
    assert scores[4] == pytest.approx(0.05)
    assert strongest_source(np.array([3, 2, 4]), links["complements"]).tolist() == [
        0,
        1,
        -1,
    ]
    assert strongest_source(np.array([3, 2, 4]), links["fallback"]).tolist() == [
        -1,
        -1,
        1,
    ]
    assert not complement_scores(
        np.empty(0, dtype=np.int64), complements=complements, neighbours=neighbours
    )[0].any()


def test_basket_is_the_latest_distinct_carted_or_bought_items() -> None:
    rows = np.array([5, 1, 2, 1, 3, -1, 4])
    weights = np.array([3, 3, 1, 4, 1.5, 3, 3], dtype=np.float32)
    assert basket_rows(rows, weights, min_weight=3).tolist() == [4, 1, 5]
    assert basket_rows(rows, weights, min_weight=3, limit=2).tolist() == [4, 1]


def test_trending_ranks_the_rising_item_above_the_steady_best_seller() -> None:
    recent = np.array([30, 40, 0, 5], dtype=np.float32)
    past = np.array([2, 40, 0, 0], dtype=np.float32) * 24
    scores = trending_scores(recent, past, past_hours=24)
    expected = (recent - past / 24) / np.sqrt(past / 24 + 1)
    assert scores == pytest.approx(expected, abs=2e-3)
    # Then the steady best-seller before the item nobody looked at.
    assert np.argsort(-scores).tolist() == [0, 3, 1, 2]
    with pytest.raises(ValueError):
        trending_scores(recent, past, past_hours=0)


# --------------------------------------------------------------------------
# Data loaders on the database
# --------------------------------------------------------------------------
@pytest.mark.django_db
def test_trending_counts_distinct_shoppers_last_hour_and_the_day_before() -> None:
    items = catalog(4)
    ids = np.array([i.pk for i in items], dtype=np.int64)
    users = [get_user_model().objects.create_user(f"u{i}").pk for i in range(3)]
    now = timezone.now()

    def event(user: int, item: int, minutes_ago: float) -> None:
        BrowsingEvent.objects.create(
            user_id=user,
            item_id=ids[item],
            action="view",
            weight=1.0,
            created=now - timedelta(minutes=minutes_ago),
        )

    event(users[0], 0, 5)
    event(users[0], 0, 6)  # the same shopper twice
    event(users[1], 0, 50)
    event(users[2], 1, 90)
    event(users[2], 1, 24 * 60 + 59)
    event(users[1], 1, 25 * 60 + 5)  # older than the baseline day
    event(users[1], 2, -5)  # after now
    counts = trending_counts(ids=ids, now=now)
    assert counts.recent.tolist() == [2, 0, 0, 0]
    assert counts.past.tolist() == [0, 1, 0, 0]
    assert counts.past_hours == 24


@pytest.mark.django_db
def test_complements_model_comes_from_cart_and_purchase_events_only() -> None:
    items = catalog(4)
    ids = np.array([i.pk for i in items], dtype=np.int64)
    a, b = (get_user_model().objects.create_user(n).pk for n in ("a", "b"))
    for user, item, action in [
        (a, 0, "cart"),
        (a, 1, "purchase"),
        (b, 0, "cart"),
        (b, 1, "cart"),
        (b, 2, "view"),  # viewing is not carting
        (a, 3, "like"),
    ]:
        BrowsingEvent.objects.create(
            user_id=user, item_id=ids[item], action=action, weight=1.0
        )
    model = complements_load(ids=ids, now=timezone.now()).toarray()
    assert model[0, 1] == pytest.approx(1.0)
    assert model[1, 0] == pytest.approx(1.0)
    assert not model[:, 2:].any() and not model[2:].any()
    data = PlacementData()
    first = data.complements(ids=ids)
    assert data.complements(ids=ids) is first
    assert data.complements(ids=ids.copy()) is not first  # a new catalog version


# --------------------------------------------------------------------------
# Placement lists from the live engine's parts, on the database
# --------------------------------------------------------------------------
def _shop():
    """Return (items, engine) after shoppers browsed within departments.

    12 items in three categories (Books, Games, Music by i % 3); users 0-5
    browse Books together, and users 6-8 cart Books item 0 with Music item 2.
    """
    items = catalog(12)
    User = get_user_model()
    at = timezone.now() - timedelta(days=2)
    books = [item for i, item in enumerate(items) if i % 3 == 0]
    for u in range(6):
        user = User.objects.create_user(f"reader{u}")
        for item in books[: 2 + u % 3]:
            BrowsingEvent.objects.create(
                user=user, item=item, action="view", weight=1.0, created=at
            )
    for u in range(3):
        user = User.objects.create_user(f"buyer{u}")
        for item in (items[0], items[2]):
            BrowsingEvent.objects.create(
                user=user, item=item, action="cart", weight=3.0, created=at
            )
    interactions = interactions_all()
    engine = Engine(catalog_load(), Behaviour.fit(interactions, now=time.time()))
    return items, engine


def _list(engine, placement, *, item=None, history=None, rules=None, data=None):
    return placement_score(
        engine=engine,
        placement=placement,
        item=item,
        history=history,
        rules=rules or CompiledRules.none(engine.n_items, engine.catalog.category),
        variant_id=None,
        k=10,
        now=time.time(),
        data=data or PlacementData(),
    )


@pytest.mark.django_db
def test_similar_lists_items_like_the_one_on_screen() -> None:
    items, engine = _shop()
    result = _list(engine, "similar", item=items[3].pk)
    ids = [entry["id"] for entry in result.items]
    assert len(ids) == 10
    assert items[3].pk not in ids
    # Books browsed together lead; content (same category) comes next.
    assert {ids[0], ids[1]} <= {items[0].pk, items[6].pk, items[9].pk}
    first = result.items[0]
    assert first["reasons"] == [f"Often chosen with {items[3].title}"]
    assert first["because"] == [items[3].pk]
    books = {item.pk for i, item in enumerate(items) if i % 3 == 0}
    assert set(ids[:3]) <= books
    with pytest.raises(UnknownPlacementItem):
        _list(engine, "similar", item=10**9)
    with pytest.raises(UnknownPlacementItem):
        _list(engine, "similar")


@pytest.mark.django_db
def test_similar_obeys_rules_and_stays_full() -> None:
    items, engine = _shop()
    rule_catalog = RuleCatalog.build(
        ids=engine.catalog.ids,
        category=engine.catalog.category,
        category_names=engine.catalog.category_names,
        tags=engine.catalog.tags,
        price=engine.catalog.price,
        stock=None,
        created=engine.catalog.created,
    )
    rules = rules_compile(
        [
            RuleSpec("exclude", "category", category="Books"),
            RuleSpec("pin", "items", item_ids=(items[5].pk,), position=3),
        ],
        rule_catalog,
        now=time.time(),
    )
    result = _list(engine, "similar", item=items[3].pk, rules=rules)
    ids = [entry["id"] for entry in result.items]
    books = {item.pk for i, item in enumerate(items) if i % 3 == 0}
    assert not set(ids) & books
    assert len(ids) == 8  # 12 items, 4 Books excluded (the anchor among them)
    assert ids[2] == items[5].pk
    assert result.items[2]["reasons"][0] == "Promoted"


@pytest.mark.django_db
def test_complements_follow_the_users_cart() -> None:
    items, engine = _shop()
    history = History(
        item_ids=np.array([items[4].pk, items[0].pk], np.int64),
        actions=["view", "cart"],
        weights=np.array([1.0, 3.0], np.float32),
        timestamps=np.array([time.time() - 5, time.time() - 1]),
    )
    result = _list(engine, "complements", history=history)
    assert result.items[0]["id"] == items[2].pk
    assert result.items[0]["reasons"] == [f"Goes well with {items[0].title}"]
    assert result.items[0]["because"] == [items[0].pk]
    assert items[0].pk not in [entry["id"] for entry in result.items]
    # A given item instead of the cart.
    by_item = _list(engine, "complements", item=items[2].pk)
    assert by_item.items[0]["id"] == items[0].pk
    # Nothing in the cart: still a full list of what is popular.
    empty = _list(engine, "complements", history=History.empty())
    assert len(empty.items) == 10


@pytest.mark.django_db
def test_trending_puts_what_is_rising_first() -> None:
    items, engine = _shop()
    User = get_user_model()
    for u in range(3):
        BrowsingEvent.objects.create(
            user=User.objects.create_user(f"fan{u}"),
            item=items[7],
            action="view",
            weight=1.0,
            created=timezone.now() - timedelta(minutes=5 + u),
        )
    result = _list(engine, "trending")
    assert result.items[0]["id"] == items[7].pk
    assert result.items[0]["reasons"] == ["Rising: 3 shoppers in the last hour"]
    assert len(result.items) == 10


@pytest.mark.django_db
def test_shared_lists_are_ranked_once_until_rules_or_catalog_change() -> None:
    items, engine = _shop()
    merchandising.reset()
    shared_lists.reset()
    placement_data.reset()
    first = placement_rank(
        engine=engine,
        user_id=None,
        placement="similar",
        item=items[3].pk,
        history=None,
        k=10,
    )
    again = placement_rank(
        engine=engine,
        user_id=None,
        placement="similar",
        item=items[3].pk,
        history=None,
        k=10,
    )
    assert again is first
    Rule.objects.create(
        name="no music",
        kind="exclude",
        target="category",
        category=Category.objects.get(name="Music"),
    )
    merchandising.invalidate()
    ruled = placement_rank(
        engine=engine,
        user_id=None,
        placement="similar",
        item=items[3].pk,
        history=None,
        k=10,
    )
    assert ruled is not first
    music = {item.pk for item in items if item.category.name == "Music"}
    assert not {entry["id"] for entry in ruled.items} & music
    rebuilt = Engine(catalog_load(), engine.behaviour)
    assert (
        placement_rank(
            engine=rebuilt,
            user_id=None,
            placement="similar",
            item=items[3].pk,
            history=None,
            k=10,
        )
        is not ruled
    )
