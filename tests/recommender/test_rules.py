"""Merchandising rules compiled into arrays, checked against brute force."""

import itertools

import numpy as np
import pytest

from recommender.engine.rules import (
    CompiledRules,
    RuleCatalog,
    RuleSpec,
    rules_compile,
)
from recommender.similarity import top_k

NOW = 1_700_000_000.0
DAY = 86400.0


def _catalog() -> RuleCatalog:
    """Eight items in three categories; item id = 10 x (row + 1)."""
    return RuleCatalog.build(
        ids=np.array([10, 20, 30, 40, 50, 60, 70, 80], dtype=np.int64),
        category=np.array([0, 0, 0, 1, 1, 2, -1, 0], dtype=np.int32),
        category_names=["Audio", "Kitchen", "Books"],
        tags=[
            ["wireless"],
            ["Wireless", "compact"],
            [],
            ["steel"],
            ["compact"],
            [],
            ["wireless"],
            [],
        ],
        price=np.array([10, 25, 99, 5, 50, 12, 100, 30], dtype=np.float32),
        stock=np.array([3, 0, -1, 1, 0, 7, -1, 2], dtype=np.int64),
        created=np.array(
            [
                *(NOW - 400 * DAY, NOW - 2 * DAY, NOW - 10 * DAY, np.nan),
                *(NOW - 90 * DAY, NOW - 29 * DAY, NOW + DAY, NOW - 31 * DAY),
            ],
            dtype=np.float64,
        ),
    )


def _rows(catalog: RuleCatalog, rule: RuleSpec) -> list[int]:
    return np.flatnonzero(catalog.matches(rule, now=NOW)).tolist()


def test_each_target_selects_the_items_a_merchandiser_means() -> None:
    cat = _catalog()
    assert _rows(cat, RuleSpec("exclude", "category", category="Audio")) == [
        0,
        1,
        2,
        7,
    ]
    assert _rows(cat, RuleSpec("exclude", "category", category="Garden")) == []
    # Tags compare case-insensitively, as the engine's features do.
    assert _rows(cat, RuleSpec("exclude", "tag", tag=" WIRELESS ")) == [0, 1, 6]
    assert _rows(cat, RuleSpec("exclude", "price_over", price=50)) == [2, 6]
    assert _rows(cat, RuleSpec("exclude", "price_under", price=12)) == [0, 3]
    # Untracked stock (-1) is never out of stock.
    assert _rows(cat, RuleSpec("exclude", "out_of_stock")) == [1, 4]
    assert _rows(cat, RuleSpec("exclude", "items", item_ids=(30, 999, 10))) == [0, 2]
    # New: created in the last 30 days, not in the future, unknown never new.
    assert _rows(cat, RuleSpec("bury", "new", factor=0.5)) == [1, 2, 5]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"kind": "boost", "target": "category", "category": "A", "factor": 0.5},
            "above 1",
        ),
        ({"kind": "bury", "target": "tag", "tag": "x", "factor": 1.5}, "(0, 1)"),
        ({"kind": "pin", "target": "category", "category": "A"}, "cannot target"),
        (
            {"kind": "pin", "target": "items", "item_ids": (1,), "position": 0},
            "starts at 1",
        ),
        ({"kind": "cap", "cap": 0}, "N >= 1"),
        ({"kind": "exclude", "target": "all"}, "cannot target"),
        ({"kind": "exclude", "target": "tag", "tag": " "}, "names its tag"),
        ({"kind": "promote"}, "unknown rule kind"),
    ],
)
def test_invalid_rules_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        RuleSpec(**kwargs)


def _scores(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n).astype(np.float32)
    scores[rng.random(n) < 0.1] = -np.inf  # seen or inactive items
    return scores


def _brute_force(
    scores: np.ndarray,
    category: np.ndarray,
    *,
    excluded: set[int],
    factor: dict[int, float],
    pins: list[tuple[int, int]],
    cap: int,
    k: int,
) -> list[int]:
    """Rank by hand: every row scored, then placed one slot at a time."""
    adjusted = {}
    for row, value in enumerate(scores.tolist()):
        if row in excluded or value == -np.inf:
            continue
        f = factor.get(row, 1.0)
        adjusted[row] = value * f if value >= 0 else value / f
    live_pins = []
    for row, position in pins:
        if row in adjusted and row not in [r for r, _ in live_pins]:
            live_pins.append((row, position))
    live_pins = live_pins[:k]
    pinned = {row for row, _ in live_pins}
    counts: dict[int, int] = {}
    for row in pinned:
        counts[int(category[row])] = counts.get(int(category[row]), 0) + 1
    others = []
    for row in sorted(adjusted, key=lambda r: (-adjusted[r], r)):
        if row in pinned or len(others) == k - len(live_pins):
            continue
        c = int(category[row])
        if cap and c >= 0 and counts.get(c, 0) >= cap:
            continue
        counts[c] = counts.get(c, 0) + 1
        others.append(row)
    size = len(live_pins) + len(others)
    slots: list[int | None] = [None] * size
    for row, position in live_pins:
        at = min(position, size) - 1
        while slots[at] is not None:
            at = (at + 1) % size
        slots[at] = row
    rest = iter(others)
    return [row if row is not None else next(rest) for row in slots]


@pytest.mark.parametrize("seed", range(40))
def test_compiled_rules_rank_like_brute_force(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(5, 60))
    n_cat = int(rng.integers(1, 5))
    category = rng.integers(-1, n_cat, size=n).astype(np.int32)
    ids = np.arange(1, n + 1, dtype=np.int64) * 7
    catalog = RuleCatalog.build(
        ids=ids,
        category=category,
        category_names=[f"c{i}" for i in range(n_cat)],
        tags=[["t"] if rng.random() < 0.3 else [] for _ in range(n)],
        price=rng.uniform(1, 100, size=n).astype(np.float32),
        stock=rng.integers(-1, 3, size=n),
        created=NOW - rng.uniform(0, 90, size=n) * DAY,
    )
    rules = [
        RuleSpec("exclude", "price_over", price=float(rng.uniform(60, 100))),
        RuleSpec("boost", "tag", tag="t", factor=float(rng.uniform(1.1, 3))),
        RuleSpec(
            "bury", "category", category="c0", factor=float(rng.uniform(0.1, 0.9))
        ),
        RuleSpec("exclude", "out_of_stock"),
    ]
    pin_ids = rng.choice(ids, size=3, replace=False).tolist()
    rules.append(RuleSpec("pin", "items", item_ids=(pin_ids[0],), position=3))
    rules.append(
        RuleSpec(
            "pin", "items", item_ids=(pin_ids[1], pin_ids[2]), position=2, priority=5
        )
    )
    cap = int(rng.integers(1, 4))
    rules.append(RuleSpec("cap", cap=cap))
    k = int(rng.integers(1, 12))
    scores = _scores(n, seed)

    compiled = rules_compile(rules, catalog, now=NOW)
    got = compiled.select(compiled.apply(scores.copy()), k)

    excluded = set(np.flatnonzero(catalog.matches(rules[0], now=NOW)).tolist())
    excluded |= set(np.flatnonzero(catalog.stock == 0).tolist())
    factor = {}
    for rule in rules[1:3]:
        for row in np.flatnonzero(catalog.matches(rule, now=NOW)).tolist():
            factor[row] = factor.get(row, 1.0) * rule.factor
    row_of = {int(i): r for r, i in enumerate(ids.tolist())}
    pins = [
        (row_of[pin_ids[1]], 2),
        (row_of[pin_ids[2]], 3),
        (row_of[pin_ids[0]], 3),
    ]
    expected = _brute_force(
        scores,
        category,
        excluded=excluded,
        factor=factor,
        pins=pins,
        cap=cap,
        k=k,
    )
    assert got.rows.tolist() == expected
    boosted = {row for row, f in factor.items() if f > 1}
    pinned = {row for row, _ in pins}
    assert got.promoted.tolist() == [r in boosted or r in pinned for r in expected]


def test_excluded_items_free_their_slots_and_the_list_stays_full() -> None:
    cat = _catalog()
    scores = np.linspace(1.0, 0.2, 8).astype(np.float32)
    compiled = rules_compile(
        [RuleSpec("exclude", "category", category="Audio")], cat, now=NOW
    )
    chosen = compiled.select(compiled.apply(scores.copy()), 4).rows
    assert chosen.tolist() == [3, 4, 5, 6]
    assert not compiled.category[chosen].tolist().count(0)


def test_diversity_cap_keeps_the_list_long_when_one_category_leads() -> None:
    n = 30
    category = np.array([0] * 20 + [1] * 5 + [2] * 5, dtype=np.int32)
    catalog = RuleCatalog.build(
        ids=np.arange(1, n + 1),
        category=category,
        category_names=["a", "b", "c"],
        tags=[[] for _ in range(n)],
        price=np.ones(n, dtype=np.float32),
        stock=None,
        created=np.full(n, NOW),
    )
    scores = np.linspace(2.0, 1.0, n).astype(np.float32)  # category a leads
    compiled = rules_compile([RuleSpec("cap", cap=2)], catalog, now=NOW)
    rows = compiled.select(compiled.apply(scores.copy()), 6).rows
    assert len(rows) == 6
    assert np.bincount(category[rows], minlength=3).tolist() == [2, 2, 2]
    # A stricter cap wins over a looser one.
    both = rules_compile(
        [RuleSpec("cap", cap=5), RuleSpec("cap", cap=1)], catalog, now=NOW
    )
    assert both.cap == 1
    # Fewer eligible items than k under the cap: as many as the cap allows.
    assert len(both.select(scores.copy(), 10).rows) == 3


def test_boost_raises_and_bury_lowers_whatever_the_sign() -> None:
    cat = _catalog()
    compiled = rules_compile(
        [
            RuleSpec("boost", "items", item_ids=(10, 20), factor=2.0),
            RuleSpec("bury", "items", item_ids=(30, 40), factor=0.5),
        ],
        cat,
        now=NOW,
    )
    scores = np.array([0.5, -0.5, 0.5, -0.5, 0, 0, 0, -np.inf], dtype=np.float32)
    out = compiled.apply(scores.copy())
    assert out[:4].tolist() == pytest.approx([1.0, -0.25, 0.25, -1.0])
    assert out[7] == -np.inf


def test_pins_skip_items_the_user_cannot_get_and_fit_short_lists() -> None:
    cat = _catalog()
    compiled = rules_compile(
        [
            RuleSpec("pin", "items", item_ids=(20,), position=1),  # seen: -inf
            RuleSpec("pin", "items", item_ids=(60,), position=9),
            RuleSpec("exclude", "items", item_ids=(50,)),
            RuleSpec("pin", "items", item_ids=(50,), position=2),  # excluded
        ],
        cat,
        now=NOW,
    )
    scores = np.array([0.9, -np.inf, 0.8, 0.7, 0.6, 0.1, 0.5, 0.4], dtype=np.float32)
    selection = compiled.select(compiled.apply(scores.copy()), 3)
    # Item 60 (row 5) is pinned past the end of a 3-long list: it shows last.
    assert selection.rows.tolist() == [0, 2, 5]
    assert selection.promoted.tolist() == [False, False, True]


def test_no_rules_select_exactly_the_plain_top_k() -> None:
    cat = _catalog()
    compiled = rules_compile([], cat, now=NOW)
    assert compiled.is_identity
    for seed, k in itertools.product(range(5), (0, 1, 3, 8, 20)):
        scores = _scores(8, seed)
        assert compiled.select(compiled.apply(scores.copy()), k).rows.tolist() == (
            top_k(scores, k).tolist()
        )
    none = CompiledRules.none(8, cat.category)
    assert none.is_identity
