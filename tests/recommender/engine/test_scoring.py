"""Batched scoring gives each user exactly the list scoring them alone gives."""

import numpy as np
import pytest

from recommender.engine import Behaviour, Engine, History, scoring
from tests.recommender.test_engine import NOW, history, make_catalog, make_interactions

DAY = 86400.0


@pytest.fixture(scope="module")
def engine():
    created = np.full(8, NOW - 1000 * DAY)
    created[3] = NOW + DAY  # item 4 appears tomorrow
    return Engine(
        make_catalog(created=created), Behaviour.fit(make_interactions(), now=NOW)
    )


@pytest.mark.parametrize("cells", [1, 16, 10**9])
def test_each_user_at_their_own_moment_with_their_own_exclusions(
    engine, monkeypatch, cells
):
    users = [
        history((1, "like")),
        History.empty(),
        history((5, "view"), (1, "view")),
        history((3, "cart"), (7, "purchase"), (3, "view")),
        History.empty(),
    ]
    nows = [NOW, NOW + 2 * DAY, NOW - 30 * DAY, NOW + 2 * DAY, NOW]
    exclude = [np.array([2], np.int64), None, np.array([6, 8]), None, None]
    alone = [
        engine.recommend(h, k=8, now=t, exclude=ex)
        for h, t, ex in zip(users, nows, exclude, strict=True)
    ]
    monkeypatch.setattr(scoring, "_SCORE_BATCH_CELLS", cells)
    together = engine.recommend_many(users, k=8, now=nows, exclude=exclude)
    assert together == alone
    # Item 4 exists only for the users scored after it appeared.
    assert 4 not in [r.item_id for r in together[4]]
    assert 4 in [r.item_id for r in together[1]]
    assert 2 not in [r.item_id for r in together[0]]


def test_one_moment_per_history_is_required(engine):
    with pytest.raises(ValueError, match="one moment per history"):
        engine.recommend_many([History.empty()] * 2, k=3, now=[NOW])
