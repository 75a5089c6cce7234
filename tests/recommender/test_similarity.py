"""Similarity maths against brute-force results on tiny hand-made matrices."""

import math

import numpy as np
import pytest

from recommender.engine import similarity
from recommender.similarity import (
    cosine_similarity,
    euclidean_similarity,
    l2_normalize,
    top_k,
)

X = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
Y = np.array([[2.0, 0.0, 4.0], [1.0, -1.0, 0.0]])


def brute_cosine(a, b):
    na, nb = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
    if na == 0 or nb == 0:
        return 0.0
    return sum(p * q for p, q in zip(a, b, strict=True)) / (na * nb)


def brute_euclidean(a, b):
    return 1.0 / (1.0 + math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b, strict=True))))


def test_cosine_matches_brute_force():
    got = cosine_similarity(X, Y)
    assert got.dtype == np.float32
    assert got.shape == (4, 2)
    for i, a in enumerate(X):
        for j, b in enumerate(Y):
            assert got[i, j] == pytest.approx(brute_cosine(a, b), abs=1e-6)


def test_cosine_self_has_unit_diagonal_except_zero_rows():
    got = cosine_similarity(X)
    assert np.diag(got)[:3] == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
    assert got[3] == pytest.approx([0.0] * 4)


def test_euclidean_matches_brute_force():
    got = euclidean_similarity(X, Y)
    for i, a in enumerate(X):
        for j, b in enumerate(Y):
            assert got[i, j] == pytest.approx(brute_euclidean(a, b), abs=1e-6)


def test_chunking_gives_the_same_answer(monkeypatch):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(37, 5)), rng.normal(size=(11, 5))
    whole_cos, whole_euc = cosine_similarity(a, b), euclidean_similarity(a, b)
    monkeypatch.setattr(similarity, "_CHUNK_CELLS", 20)  # two rows per chunk
    assert cosine_similarity(a, b) == pytest.approx(whole_cos, abs=1e-6)
    assert euclidean_similarity(a, b) == pytest.approx(whole_euc, abs=1e-6)


def test_l2_normalize_keeps_zero_rows_zero():
    got = l2_normalize(X)
    assert np.linalg.norm(got[:3], axis=1) == pytest.approx([1.0] * 3, abs=1e-6)
    assert got[3] == pytest.approx([0.0] * 3)


def test_input_validation():
    with pytest.raises(ValueError, match="same number of features"):
        cosine_similarity(X, np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        euclidean_similarity([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        cosine_similarity(np.ones((2, 2, 2)))


def test_top_k_matches_a_full_sort_and_breaks_ties_by_index():
    scores = np.array([0.5, 0.9, 0.1, 0.9, 0.5, 0.5, -np.inf], dtype=np.float32)
    brute = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    for k in range(0, 8):
        expected = [i for i in brute[:k] if np.isfinite(scores[i])]
        assert top_k(scores, k).tolist() == expected


def test_top_k_random_against_sort():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 20, size=500).astype(np.float32)  # many ties
    expected = np.lexsort((np.arange(500), -scores))[:25]
    assert top_k(scores, 25).tolist() == expected.tolist()
    assert top_k(scores, 25).dtype == np.int64


def test_top_k_validation():
    with pytest.raises(ValueError):
        top_k(np.ones((2, 2)), 1)
    with pytest.raises(ValueError):
        top_k(np.ones(3), -1)
    with pytest.raises(ValueError):
        top_k(np.array([np.nan, 1.0]), 1)
