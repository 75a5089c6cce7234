"""Catalog edits applied to a built engine, row by row, match a full build."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine import Behaviour, Engine
from recommender.engine.features import FeatureSpace
from recommender.engine.indexing import catalog_take, csr_rows_replace
from tests.recommender.test_engine import (
    DAY,
    NOW,
    history,
    make_catalog,
    make_interactions,
)


@pytest.fixture(scope="module")
def behaviour():
    return Behaviour.fit(make_interactions(), now=NOW)


def lists(engine, users, k=5):
    return [[r.item_id for r in engine.recommend(h, k=k, now=NOW)] for h in users]


USERS = [
    history((1, "view")),
    history((5, "like"), (6, "view")),
    history((2, "cart"), (7, "view")),
    history(),
]


def test_new_items_edits_and_deletions_give_the_full_builds_lists(behaviour):
    full = make_catalog(12)
    # The engine saw items 1..10; then 11 and 12 arrive, 3 changes price and
    # category, 6 is deleted.
    engine = Engine(catalog_take(full, np.arange(10)), behaviour)
    edited = dataclasses.replace(
        catalog_take(full, np.array([2, 10, 11])),
        price=np.array([9.0, 2.0, 3.0], np.float32),
        category=np.array([1, 0, 1], np.int32),
    )
    patched = engine.with_changes(edited, np.array([6]))

    expected = make_catalog(12)
    expected.price[2] = 9.0
    expected.category[2] = 1
    expected.price[10:12] = [2.0, 3.0]
    expected.category[10:12] = [0, 1]
    expected.active[5] = False
    rebuilt = Engine(expected, behaviour)
    assert patched is not None
    assert patched.ids.tolist() == list(range(1, 13))
    assert patched.catalog.active.tolist() == expected.active.tolist()
    assert lists(patched, USERS, k=8) == lists(rebuilt, USERS, k=8)
    assert all(6 not in ids for ids in lists(patched, USERS, k=11))
    # Nothing fitted again: the edits cost rows, not a build.
    assert patched.feature_space is engine.feature_space
    assert patched.rows_patched == 3


def test_the_engine_before_the_edit_is_untouched(behaviour):
    engine = Engine(make_catalog(8), behaviour)
    before = lists(engine, USERS)
    edited = dataclasses.replace(
        catalog_take(engine.catalog, np.array([1])), active=np.array([False])
    )
    patched = engine.with_changes(edited, np.empty(0, np.int64))
    assert patched is not None
    assert lists(engine, USERS) == before
    assert all(2 not in ids for ids in lists(patched, USERS, k=7))


def test_a_new_item_the_fitted_model_knows_gets_its_neighbours(behaviour):
    """Items fitted before the engine saw them are linked once they arrive."""
    full = make_catalog(8)
    engine = Engine(catalog_take(full, np.arange(6)), behaviour)
    patched = engine.with_changes(catalog_take(full, np.array([6, 7])), np.empty(0))
    rebuilt = Engine(full, behaviour)
    assert patched is not None
    assert (patched.neighbours != rebuilt.neighbours).nnz == 0
    assert lists(patched, USERS) == lists(rebuilt, USERS)


def test_edits_that_would_move_rows_ask_for_a_full_build(behaviour):
    full = make_catalog(8)
    engine = Engine(catalog_take(full, np.array([0, 1, 2, 4, 5, 6, 7])), behaviour)
    # Item 4 is new but below the largest id: rows would move.
    assert engine.with_changes(catalog_take(full, np.array([3])), np.empty(0)) is None
    # A category gone from the middle of the list renumbers the others.
    renamed = dataclasses.replace(
        catalog_take(full, np.array([0])), category_names=["Drama"]
    )
    assert engine.with_changes(renamed, np.empty(0)) is None


def test_a_new_category_is_known_to_the_catalog_at_once(behaviour):
    engine = Engine(make_catalog(8), behaviour)
    moved = dataclasses.replace(
        catalog_take(engine.catalog, np.array([0])),
        category=np.array([2], np.int32),
        category_names=["Comedy", "Drama", "Kitchen"],
    )
    patched = engine.with_changes(moved, np.empty(0))
    assert patched is not None
    assert patched.catalog.category_names == ["Comedy", "Drama", "Kitchen"]
    assert patched.catalog.category[0] == 2
    # Its feature row has no category until the space is fitted again.
    assert patched.features.shape == engine.features.shape


def test_feature_rows_of_edited_items_use_the_fitted_scales():
    catalog = make_catalog(8)
    space, matrix = FeatureSpace.fit_encode(catalog)
    assert (space.encode(catalog) != matrix).nnz == 0
    unknown = dataclasses.replace(
        catalog_take(catalog, np.array([0])),
        tags=[["funny", "never-seen"]],
        price=np.array([1e6], np.float32),
    )
    row = space.encode(unknown).toarray()[0]
    assert np.isclose(np.linalg.norm(row), 1.0)
    # The unseen tag adds no column; the price counts as the fitted maximum.
    assert row.shape == (matrix.shape[1],)
    top = dataclasses.replace(unknown, tags=[["funny"]], price=np.array([10.0]))
    assert np.allclose(row, space.encode(top).toarray()[0])


def test_csr_rows_replace_matches_dense_assignment():
    rng = np.random.default_rng(3)
    dense = rng.random((6, 4)) * (rng.random((6, 4)) > 0.5)
    block = rng.random((3, 4)) * (rng.random((3, 4)) > 0.3)
    rows = np.array([1, 4, 7])
    out = csr_rows_replace(sp.csr_matrix(dense), rows, sp.csr_matrix(block), 9)
    expected = np.zeros((9, 4))
    expected[:6] = dense
    expected[rows] = block
    assert out.shape == (9, 4)
    assert np.array_equal(out.toarray(), expected)


def test_trends_of_an_edited_catalog_bar_new_future_items(behaviour):
    created = np.full(8, NOW - 1000 * DAY)
    engine = Engine(make_catalog(8, created=created), behaviour)
    tomorrow = dataclasses.replace(
        catalog_take(engine.catalog, np.array([7])),
        ids=np.array([9]),
        created=np.array([NOW + DAY]),
    )
    patched = engine.with_changes(tomorrow, np.empty(0))
    assert patched is not None
    assert all(9 not in ids for ids in lists(patched, USERS, k=7))
