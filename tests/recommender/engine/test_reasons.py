"""Reasons and ``because`` ids on tiny hand-made catalogs: true and distinct."""

import numpy as np
import pytest

from recommender.engine import Behaviour, Catalog, Engine, History, Interactions
from recommender.engine.actions import ACTION_WEIGHTS
from recommender.engine.reasons import BECAUSE_MAX, SIMILAR_MIN_COSINE

NOW = 1_700_000_000.0
DAY = 86400.0


def catalog(titles, categories, tags):
    n = len(titles)
    return Catalog(
        ids=np.arange(1, n + 1, dtype=np.int64),
        titles=list(titles),
        category=np.asarray(categories, np.int32),
        category_names=["Books", "Audio", "Kitchen"],
        tags=[list(t) for t in tags],
        price=np.full(n, 10.0, np.float32),
        rating=np.full(n, 4.0, np.float32),
        year=np.full(n, np.nan, np.float32),
        active=np.ones(n, bool),
        created=np.full(n, NOW - 1000 * DAY),
    )


def fit(baskets):
    """Fit on ``baskets``: one list of item ids per user."""
    pairs = [(u, i) for u, items in enumerate(baskets, 1) for i in items]
    users = np.array([p[0] for p in pairs], np.int64)
    items = np.array([p[1] for p in pairs], np.int64)
    stamps = NOW - DAY * (len(pairs) - np.arange(len(pairs)))
    return Behaviour.fit(
        Interactions(users, items, np.ones(len(pairs), np.float32), stamps), now=NOW
    )


def history(*events):
    return History(
        item_ids=np.array([e[0] for e in events], np.int64),
        actions=[e[1] for e in events],
        weights=np.array([ACTION_WEIGHTS[e[1]] for e in events], np.float32),
        timestamps=NOW - np.arange(len(events), 0, -1, dtype=np.float64),
    )


# Books 1-3 (an atlas twice under one title), headphones 4-5, a skillet 6.
CATALOG = catalog(
    ["Zephyr Atlas", "Zephyr Atlas", "Road Maps", "Lumen Headphones", "Ear Pads",
     "Lumen Skillet"],
    [0, 0, 0, 1, 1, 2],
    [["maps", "travel"], ["maps", "travel"], ["maps"], ["audio"], ["audio"], ["pan"]],
)  # fmt: skip
# Shoppers who bought the atlas also bought its twin, the road maps and,
# oddly, the skillet; headphone buyers bought ear pads.
BASKETS = [[1, 2, 3, 6], [1, 2, 3, 6], [1, 2, 6], [4, 5], [4, 5], [4, 5, 2]]


@pytest.fixture(scope="module")
def engine():
    return Engine(CATALOG, fit(BASKETS))


def test_cold_start_names_no_item_of_the_user(engine):
    recs = engine.recommend(History.empty(), k=6, now=NOW)
    assert recs
    for rec in recs:
        assert rec.because == []
        assert not any(r.startswith(("Because", "Similar")) for r in rec.reasons)


def test_never_because_of_the_item_itself_or_its_namesake(engine):
    recs = engine.recommend(history((1, "like")), k=5, now=NOW)
    twin = next(r for r in recs if r.item_id == 2)
    # Item 2 is there because of item 1, and item 1 is in ``because``...
    assert twin.because[:1] == [1]
    # ...but "Because you liked Zephyr Atlas" would read as the item itself.
    assert not any("Zephyr Atlas" in text for text in twin.reasons)
    for rec in recs:
        title = CATALOG.titles[rec.item_id - 1]
        assert not any(text.endswith(title) for text in rec.reasons)


def test_because_names_the_users_own_strongest_items_first(engine):
    recs = engine.recommend(history((4, "view"), (1, "cart")), k=4, now=NOW)
    by_id = {r.item_id: r for r in recs}
    assert by_id[3].because[0] == 1  # road maps: the atlas in the cart
    assert by_id[3].reasons[0].endswith("Zephyr Atlas")
    assert by_id[5].because[0] == 4  # ear pads: the headphones
    for rec in recs:
        assert len(rec.because) == len(set(rec.because)) <= BECAUSE_MAX
        assert set(rec.because) <= {1, 4}


def test_similar_only_when_really_similar_by_features(engine):
    features = engine.features
    recs = engine.recommend(history((1, "view"), (4, "view")), k=4, now=NOW)
    seen = {}
    for rec in recs:
        for text in rec.reasons:
            if text.startswith("Similar to "):
                source = CATALOG.titles.index(text.removeprefix("Similar to ")) + 1
                row = features[rec.item_id - 1] @ features[source - 1].T
                seen[rec.item_id] = float(row.toarray()[0, 0])
    # The skillet is bought with the atlas but shares nothing with it.
    skillet = next(r for r in recs if r.item_id == 6)
    assert not any(t.startswith("Similar to") for t in skillet.reasons)
    assert all(cos >= SIMILAR_MIN_COSINE for cos in seen.values())


def test_two_reasons_never_say_the_same_thing(engine):
    for h in (
        history((1, "view")),
        history((1, "view"), (4, "like")),
        history((3, "purchase"), (5, "view"), (1, "view")),
    ):
        for rec in engine.recommend(h, k=5, now=NOW):
            assert len(rec.reasons) == len(set(rec.reasons)) <= 2
            named = [t.split(" ", 3)[-1] for t in rec.reasons if "you" in t]
            named += [
                t.removeprefix("Similar to ") for t in rec.reasons if "Similar" in t
            ]
            assert len(named) == len(set(named)), rec.reasons


def test_because_travels_in_the_message_and_the_api_schema(engine):
    import msgpack

    from recommender import messages
    from recommender.api.recommendations import RecommendationsOut

    recs = engine.recommend(history((4, "view"), (1, "cart")), k=3, now=NOW)
    items = [
        {
            "id": r.item_id,
            "title": "",
            "score": r.score,
            "reasons": r.reasons,
            "because": r.because,
        }
        for r in recs
    ]
    message = messages.recommendations(version=2, items=items, computed_ms=1.0)
    again = msgpack.unpackb(msgpack.packb(message))
    assert [i["because"] for i in again["items"]] == [r.because for r in recs]
    assert RecommendationsOut.model_validate(again).items[0].because == recs[0].because
    # A list stored before ``because`` existed still builds, with none.
    old = [{k: v for k, v in item.items() if k != "because"} for item in items]
    built = messages.recommendations(version=1, items=old, computed_ms=1.0)
    assert all(i["because"] == [] for i in built["items"])
