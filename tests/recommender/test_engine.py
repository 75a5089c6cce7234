"""The recommendation engine on small hand-made catalogs and histories."""

import numpy as np
import pytest

from recommender.services.engine import (
    ACTION_WEIGHTS,
    Behaviour,
    Catalog,
    Engine,
    FitParams,
    History,
    Interactions,
    ScoreParams,
)
from recommender.services.features import item_features_build

DAY = 86400.0
NOW = 1_700_000_000.0


def make_catalog(n=8, *, active=None, created=None, ids=None):
    """Two genres: items 1..4 are "Comedy", 5..8 are "Drama" (ids 1-based)."""
    ids = np.arange(1, n + 1, dtype=np.int64) if ids is None else np.asarray(ids)
    return Catalog(
        ids=ids,
        titles=[f"Item {i}" for i in ids],
        category=np.array([0 if i <= n // 2 else 1 for i in range(1, n + 1)], np.int32),
        category_names=["Comedy", "Drama"],
        tags=[["funny"] if i <= n // 2 else ["sad", "slow"] for i in range(1, n + 1)],
        price=np.linspace(1, 10, n).astype(np.float32),
        rating=np.full(n, 4.0, np.float32),
        year=np.full(n, np.nan, np.float32),
        active=np.ones(n, bool) if active is None else np.asarray(active),
        created=np.full(n, NOW - 1000 * DAY)
        if created is None
        else np.asarray(created),
    )


def make_interactions():
    """Users 1-3 watch comedies 1-3 together; users 4-6 dramas 5-7; 2 is popular."""
    pairs = [(u, i) for u in (1, 2, 3) for i in (1, 2, 3)]
    pairs += [(u, i) for u in (4, 5, 6) for i in (5, 6, 7)]
    pairs += [(u, 2) for u in (7, 8, 9, 10)]
    users = np.array([p[0] for p in pairs], np.int64)
    items = np.array([p[1] for p in pairs], np.int64)
    stamps = NOW - DAY * (len(pairs) - np.arange(len(pairs)))
    return Interactions(users, items, np.ones(len(pairs), np.float32), stamps)


def history(*events):
    """Build a History from (item_id, action) pairs, oldest first."""
    return History(
        item_ids=np.array([e[0] for e in events], np.int64),
        actions=[e[1] for e in events],
        weights=np.array([ACTION_WEIGHTS[e[1]] for e in events], np.float32),
        timestamps=NOW - np.arange(len(events), 0, -1, dtype=np.float64),
    )


@pytest.fixture(scope="module")
def behaviour():
    return Behaviour.fit(make_interactions(), now=NOW)


@pytest.fixture(scope="module")
def engine(behaviour):
    return Engine(make_catalog(), behaviour)


def ids_of(recs):
    return [r.item_id for r in recs]


def test_feature_matrix_is_float32_unit_rows():
    features = item_features_build(make_catalog())
    assert features.dtype == np.float32
    norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1)).ravel())
    assert norms == pytest.approx(np.ones(8), abs=1e-5)
    sims = (features @ features.T).toarray()
    assert sims[0, 1] > sims[0, 5]  # same genre and tags beat the other genre


def test_cold_start_is_popularity_first(engine):
    recs = engine.recommend(History.empty(), k=3, now=NOW)
    assert recs[0].item_id == 2
    assert "Popular in Comedy" in recs[0].reasons
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)


def test_behaviour_neighbours_drive_the_list_with_reasons(engine):
    recs = engine.recommend(history((1, "like")), k=2, now=NOW)
    assert set(ids_of(recs)) == {2, 3}
    assert recs[0].reasons[0] == "Because you liked Item 1"


def test_never_returns_history_inactive_or_excluded():
    active = np.ones(8, bool)
    active[2] = False  # item 3
    eng = Engine(
        make_catalog(active=active), Behaviour.fit(make_interactions(), now=NOW)
    )
    recs = eng.recommend(
        history((1, "view"), (5, "view")),
        k=8,
        now=NOW,
        exclude=np.array([6], np.int64),
    )
    got = set(ids_of(recs))
    assert got.isdisjoint({1, 5, 3, 6})
    assert got == {2, 4, 7, 8}


def test_items_created_after_now_are_not_yet_available(behaviour):
    created = np.full(8, NOW - 10 * DAY)
    created[3] = NOW + DAY  # item 4 appears tomorrow
    eng = Engine(make_catalog(created=created), behaviour)
    assert 4 not in ids_of(eng.recommend(History.empty(), k=8, now=NOW))
    assert 4 in ids_of(eng.recommend(History.empty(), k=8, now=NOW + 2 * DAY))


def test_one_event_changes_the_list_without_refit(engine):
    before = engine.recommend(history((1, "view")), k=3, now=NOW)
    after = engine.recommend(history((1, "view"), (5, "purchase")), k=3, now=NOW)
    assert ids_of(before) != ids_of(after)
    assert {6, 7} <= set(ids_of(after))  # the drama neighbours of item 5


def test_recent_events_count_more(engine):
    recs = engine.recommend(history((5, "view"), (1, "view")), k=1, now=NOW)
    assert recs[0].item_id in {2, 3}  # the newest event's neighbours win


def test_unseen_items_are_recommendable_by_content(behaviour):
    # Item 9 is a new comedy nobody has touched: the behaviour model has never
    # seen it, yet a comedy fan should get it (by content and newness).
    catalog = make_catalog(9, created=np.r_[np.full(8, NOW - 1000 * DAY), NOW - DAY])
    catalog = Catalog(
        **{
            **catalog.__dict__,
            "category": np.r_[catalog.category[:8], 0].astype(np.int32),
            "tags": [*catalog.tags[:8], ["funny"]],
        }
    )
    eng = Engine(catalog, behaviour)
    recs = eng.recommend(history((1, "like"), (2, "like"), (3, "like")), k=3, now=NOW)
    assert 9 in ids_of(recs)
    reasons = next(r.reasons for r in recs if r.item_id == 9)
    assert any(text.startswith(("Similar to", "New in")) for text in reasons)


def test_catalog_order_does_not_matter(behaviour):
    catalog = make_catalog()
    order = np.array([7, 3, 0, 5, 1, 6, 2, 4])
    shuffled = Catalog(
        ids=catalog.ids[order],
        titles=[catalog.titles[i] for i in order],
        category=catalog.category[order],
        category_names=catalog.category_names,
        tags=[catalog.tags[i] for i in order],
        price=catalog.price[order],
        rating=catalog.rating[order],
        year=catalog.year[order],
        active=catalog.active[order],
        created=catalog.created[order],
    )
    h = history((1, "view"), (6, "cart"))
    a = Engine(catalog, behaviour).recommend(h, k=5, now=NOW)
    b = Engine(shuffled, behaviour).recommend(h, k=5, now=NOW)
    assert a == b


def test_to_bytes_round_trip(behaviour, engine):
    data = behaviour.to_bytes()
    assert b"pickle" not in data
    again = Behaviour.from_bytes(data)
    assert again.item_ids.tolist() == behaviour.item_ids.tolist()
    assert (again.neighbours != behaviour.neighbours).nnz == 0
    assert again.pop_count.tolist() == behaviour.pop_count.tolist()
    assert again.method == behaviour.method
    h = history((1, "view"), (6, "like"))
    assert engine.with_behaviour(again).recommend(h, k=4, now=NOW) == engine.recommend(
        h, k=4, now=NOW
    )


def test_empty_behaviour_still_recommends_by_content_and_newness():
    eng = Engine(make_catalog(), Behaviour.empty())
    assert len(eng.recommend(History.empty(), k=3, now=NOW)) == 3
    recs = eng.recommend(history((1, "like")), k=3, now=NOW)
    assert set(ids_of(recs)) == {2, 3, 4}
    assert Behaviour.from_bytes(Behaviour.empty().to_bytes()).method == "empty"


def test_with_catalog_keeps_behaviour_and_drops_removed_items(engine):
    smaller = make_catalog(6)
    eng = engine.with_catalog(smaller)
    assert eng.behaviour is engine.behaviour
    recs = eng.recommend(history((5, "view")), k=6, now=NOW)
    assert max(ids_of(recs)) <= 6


def test_ease_matches_the_closed_form():
    inter = make_interactions()
    lam = 2.0
    fitted = Behaviour.fit(
        inter, now=NOW, params=FitParams(method="ease", ease_lambda=lam, neighbours=100)
    )
    items = np.unique(inter.item_ids)
    x = np.zeros((10, items.size))
    x[inter.user_ids - 1, np.searchsorted(items, inter.item_ids)] = 1.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(items.size))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    b[b < 0] = 0.0  # only positive neighbours are kept
    assert fitted.neighbours.toarray() == pytest.approx(b, abs=1e-4)


def test_knn_matches_brute_force_cosine_top_n():
    inter = make_interactions()
    fitted = Behaviour.fit(inter, now=NOW, params=FitParams(method="knn", neighbours=2))
    items = np.unique(inter.item_ids)
    x = np.zeros((10, items.size))
    x[inter.user_ids - 1, np.searchsorted(items, inter.item_ids)] = 1.0
    norms = np.linalg.norm(x, axis=0)
    sims = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(sims, 0.0)
    got = fitted.neighbours.toarray()
    for row in range(items.size):
        kept = np.flatnonzero(got[row])
        assert len(kept) <= 2
        assert got[row, kept] == pytest.approx(sims[row, kept], abs=1e-6)
        if len(kept):  # the kept ones are the strongest
            assert got[row, kept].min() >= np.sort(sims[row])[-2] - 1e-6


def test_deterministic(behaviour):
    h = history((1, "view"), (5, "view"))
    runs = {
        tuple(ids_of(Engine(make_catalog(), behaviour).recommend(h, k=6, now=NOW)))
        for _ in range(3)
    }
    assert len(runs) == 1


def test_score_params_change_the_blend(engine):
    pop_only = engine.with_params(
        ScoreParams(behaviour_weight=0, content_weight=0, new_weight=0)
    )
    recs = pop_only.recommend(history((5, "view")), k=1, now=NOW)
    assert recs[0].item_id == 2


def test_gather_rows_matches_scipy_row_slicing():
    from recommender.engine.indexing import gather_rows as _gather_rows

    rng = np.random.default_rng(3)
    dense = rng.random((30, 12)) * (rng.random((30, 12)) > 0.7)
    matrix = __import__("scipy.sparse").sparse.csr_matrix(dense.astype(np.float32))
    rows = np.array([4, 0, 29, 4, 7], dtype=np.int64)
    pos, cols, vals = _gather_rows(matrix, rows)
    rebuilt = np.zeros((rows.size, 12), np.float32)
    rebuilt[pos, cols] = vals
    assert rebuilt == pytest.approx(dense[rows].astype(np.float32))


def test_scores_and_recommend_agree(engine):
    h = history((1, "view"), (6, "like"))
    scores = engine.scores(h, now=NOW)
    recs = engine.recommend(h, k=3, now=NOW)
    for rec in recs:
        row = int(np.searchsorted(engine.ids, rec.item_id))
        assert scores[row] == pytest.approx(rec.score)
    assert np.isneginf(scores[[0, 5]]).all()  # the history items are barred


def test_users_scored_together_get_exactly_their_own_lists(engine, monkeypatch):
    from recommender.engine import scoring as engine_module

    users = [
        history((1, "like")),
        History.empty(),
        history((5, "view"), (1, "view")),
        history((3, "cart"), (7, "purchase"), (3, "view")),
        history((99, "view")),  # an item that left the catalog
    ]
    alone = [engine.recommend(h, k=4, now=NOW) for h in users]
    # Chunks of one, two and all users must not mix users' signals up.
    for cells in (1, 2 * engine.n_items, 10**9):
        monkeypatch.setattr(engine_module, "_SCORE_BATCH_CELLS", cells)
        together = engine.recommend_many(users, k=4, now=NOW)
        assert [
            [(r.item_id, r.score, r.reasons) for r in recs] for recs in together
        ] == [[(r.item_id, r.score, r.reasons) for r in recs] for recs in alone]
