"""Ranking metrics on hand-made cases (peers.md conventions)."""

import math

import numpy as np
import pytest

from recommender.services.evaluation import Split, ranking_metrics, temporal_split


def arr(*values):
    return np.array(values, dtype=np.int64)


def test_hand_computed_case():
    # user 1: list [10, 11, 12], relevant {11, 13}: one hit at rank 2
    # user 2: list [20, 21, 22], relevant {20}:     one hit at rank 1
    # user 3: no relevant items -> not evaluated, even though it has a list
    m = ranking_metrics(
        arr(1, 1, 1, 2, 2, 2, 3, 3, 3),
        arr(10, 11, 12, 20, 21, 22, 30, 31, 32),
        arr(1, 2, 3, 1, 2, 3, 1, 2, 3),
        arr(1, 1, 2),
        arr(11, 13, 20),
        k=3,
        universe_size=20,
    )
    p1, p2 = 1 / 3, 1 / 3
    r1, r2 = 1 / 2, 1 / 1
    precision, recall = (p1 + p2) / 2, (r1 + r2) / 2
    ndcg1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # ideal: 2 hits
    ndcg2 = 1.0
    assert m["users"] == 2
    assert m["precision"] == pytest.approx(precision)
    assert m["recall"] == pytest.approx(recall)
    assert m["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert m["ndcg"] == pytest.approx((ndcg1 + ndcg2) / 2)
    assert m["hit_rate"] == pytest.approx(1.0)
    # coverage counts the lists of evaluated users: 6 items out of 20
    assert m["coverage"] == pytest.approx(6 / 20)


def test_short_lists_still_divide_by_k_and_missing_users_score_zero():
    m = ranking_metrics(
        arr(1), arr(5), arr(1), arr(1, 2), arr(5, 6), k=10, universe_size=10
    )
    assert m["precision"] == pytest.approx((1 / 10 + 0) / 2)
    assert m["recall"] == pytest.approx((1 + 0) / 2)
    assert m["hit_rate"] == pytest.approx(0.5)
    assert m["ndcg"] == pytest.approx(0.5)


def test_ranks_beyond_k_are_ignored_and_ideal_is_capped_at_k():
    m = ranking_metrics(
        arr(1, 1, 1),
        arr(7, 8, 9),
        arr(1, 2, 3),
        arr(1, 1, 1),
        arr(7, 8, 9),
        k=2,
        universe_size=3,
    )
    assert m["precision"] == pytest.approx(1.0)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["ndcg"] == pytest.approx(1.0)


def test_perfect_and_empty():
    perfect = ranking_metrics(
        arr(1, 1), arr(3, 4), arr(1, 2), arr(1, 1), arr(3, 4), k=2, universe_size=4
    )
    assert perfect["ndcg"] == pytest.approx(1.0)
    assert perfect["f1"] == pytest.approx(1.0)
    empty = ranking_metrics(arr(), arr(), arr(), arr(), arr(), k=2, universe_size=4)
    assert empty["users"] == 0
    assert empty["ndcg"] == 0.0


def test_temporal_split_follows_the_shared_rule():
    # user 1: 10 events -> last 2 test; ties in time broken by item id
    # user 2: 4 events (< 5) -> all train; user 3: 5 events -> last 1 test
    users = arr(*([1] * 10 + [2] * 4 + [3] * 5))
    items = arr(*range(10), 1, 2, 3, 4, 9, 8, 7, 6, 5)
    stamps = np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 9, 1, 2, 3, 4, 1, 1, 1, 1, 1], float)
    train, test = temporal_split(Split(users, items, stamps))
    assert sorted(zip(test.users.tolist(), test.items.tolist(), strict=True)) == [
        (1, 8),
        (1, 9),
        (3, 9),
    ]
    assert train.users.size == 16
