"""Merchandising rules compiled into arrays, checked against brute force."""

import itertools

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from recommender.engine import Behaviour, Catalog, Engine, History, Interactions
from recommender.engine.rules import (
    CompiledRules,
    RuleCatalog,
    RuleSpec,
    rules_compile,
)
from recommender.engine.similarity import top_k
from recommender.models import Category, Experiment, Item, Rule, Variant
from recommender.services.rules import Merchandising, rule_catalog_build
from tests import factories

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


# --------------------------------------------------------------------------
# Rules on the database, the admin and the per-process cache
# --------------------------------------------------------------------------
def _rule(**fields) -> Rule:
    items = fields.pop("items", ())
    rule = Rule.objects.create(**fields)
    for item in items:
        rule.items.add(item)
    return rule


@pytest.mark.django_db
def test_stored_rules_load_as_specs_for_their_placement_and_variant() -> None:
    items = factories.catalog(6)
    books = Category.objects.get(name="Books")
    experiment = Experiment.objects.create(name="e")
    variant = Variant.objects.create(experiment=experiment, name="v", share=0.5)
    _rule(name="no books", kind="exclude", target="category", category=books)
    # A pin shows its items in the order staff added them, not by id.
    _rule(
        name="promo",
        kind="pin",
        target="items",
        items=[items[4], items[1]],
        position=2,
        placement="similar",
        priority=3,
    )
    _rule(name="off", kind="cap", cap=2, active=False)
    _rule(name="test arm", kind="cap", cap=1, variant=variant)
    # A target pointing at nothing is skipped, not fatal.
    _rule(name="empty pin", kind="pin", target="items")

    merch = Merchandising()
    snapshot = merch.current()
    assert [r.spec.kind for r in snapshot.rules] == ["pin", "exclude", "cap"]
    assert snapshot.rules[0].spec.item_ids == (items[4].pk, items[1].pk)
    assert snapshot.rules[1].spec.category == "Books"
    for_you = snapshot.rules_for(placement="for_you", variant_id=None)
    assert [s.kind for s in for_you] == ["exclude"]
    similar = snapshot.rules_for(placement="similar", variant_id=variant.pk)
    assert [s.kind for s in similar] == ["pin", "exclude", "cap"]


@pytest.mark.django_db
def test_a_staff_change_is_seen_after_invalidate_and_recompiles() -> None:
    items = factories.catalog(6)
    cat = rule_catalog_build(
        ids=[i.pk for i in items],
        category=np.array([i % 3 for i in range(6)], dtype=np.int32),
        category_names=["Books", "Games", "Music"],
        tags=[[] for _ in items],
        price=np.array([float(i.price) for i in items], dtype=np.float32),
        created=np.full(6, NOW),
    )
    assert cat.stock.tolist() == [-1] * 6
    merch = Merchandising()
    first = merch.compiled(catalog=cat, placement="for_you", variant_id=None, now=NOW)
    assert first.is_identity
    assert (
        merch.compiled(catalog=cat, placement="for_you", variant_id=None, now=NOW)
        is first
    )
    rule = _rule(
        name="no games",
        kind="exclude",
        target="category",
        category=Category.objects.get(name="Games"),
    )
    merch.invalidate()
    second = merch.compiled(catalog=cat, placement="for_you", variant_id=None, now=NOW)
    assert second.excluded.tolist() == [False, True, False, False, True, False]
    rule.delete()
    merch.invalidate()
    assert merch.compiled(
        catalog=cat, placement="for_you", variant_id=None, now=NOW
    ).is_identity
    Item.objects.filter(pk=items[2].pk).update(stock=0)
    stocked = rule_catalog_build(
        ids=[i.pk for i in items],
        category=cat.category,
        category_names=cat.category_names,
        tags=[[] for _ in items],
        price=cat.price,
        created=cat.created,
    )
    assert stocked.stock.tolist() == [-1, -1, 0, -1, -1, -1]


@pytest.mark.django_db
def test_staff_edit_rules_and_experiments_in_admin_and_bad_ones_are_refused(
    client,
) -> None:
    factories.catalog(3)
    books = Category.objects.get(name="Books")
    shopper = get_user_model().objects.create_user("shopper", password="pw-123456789")
    client.force_login(shopper)
    assert client.get("/admin/recommender/rule/").status_code == 302
    staff = get_user_model().objects.create_superuser("boss", password="pw-123456789")
    client.force_login(staff)
    assert client.get("/admin/recommender/rule/add/").status_code == 200
    form = {
        "name": "Books up",
        "kind": "boost",
        "target": "category",
        "category": books.pk,
        "factor": "0.5",
        "position": 1,
        "cap": 3,
        "priority": 0,
        "new_within_days": 30,
        "active": "on",
        "placement": "",
    }
    response = client.post("/admin/recommender/rule/add/", form)
    assert response.status_code == 200
    assert "A boost needs a factor above 1." in response.content.decode()
    response = client.post(
        "/admin/recommender/rule/add/", {**form, "kind": "pin", "target": "items"}
    )
    assert "Choose at least one item." in response.content.decode()
    response = client.post("/admin/recommender/rule/add/", {**form, "factor": "2"})
    assert response.status_code == 302
    assert Rule.objects.get().category == books

    inline = {
        "variants-TOTAL_FORMS": 2,
        "variants-INITIAL_FORMS": 0,
        "variants-MIN_NUM_FORMS": 0,
        "variants-MAX_NUM_FORMS": 1000,
        "variants-0-name": "control",
        "variants-0-share": "0.6",
        "variants-0-params": "{}",
        "variants-1-name": "content",
        "variants-1-share": "0.6",
        "variants-1-params": '{"content_weight": 0.5}',
    }
    experiment = {"name": "blend", "active": "on", "created_0": "", "created_1": ""}
    url = "/admin/recommender/experiment/add/"
    response = client.post(url, {**experiment, **inline})
    assert "Traffic shares add up to 1.2" in response.content.decode()
    response = client.post(
        url,
        {
            **experiment,
            **inline,
            "variants-1-share": "0.4",
            "variants-1-params": '{"x": 1}',
        },
    )
    assert "Extra inputs are not permitted" in response.content.decode()
    response = client.post(url, {**experiment, **inline, "variants-1-share": "0.4"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert [v.params for v in Variant.objects.order_by("id")] == [
        {},
        {"content_weight": 0.5},
    ]


@pytest.mark.django_db
def test_rules_compile_over_the_engines_catalog_with_stock_from_the_database() -> None:
    from recommender.services.catalog import catalog_load

    items = factories.catalog(6)
    Item.objects.filter(pk=items[1].pk).update(stock=0)
    Item.objects.filter(pk=items[2].pk).update(stock=4)
    _rule(name="in stock only", kind="exclude", target="out_of_stock")
    catalog = catalog_load()
    merch = Merchandising()
    compiled = merch.compiled(
        catalog=catalog, placement="trending", variant_id=None, now=NOW
    )
    row = catalog.ids.tolist().index(items[1].pk)
    assert np.flatnonzero(compiled.excluded).tolist() == [row]


@pytest.mark.django_db
def test_an_edited_catalog_patches_the_rule_view_and_compiles_as_a_full_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recommender.services.catalog import catalog_changes, catalog_load
    from sync.selectors import seq_latest

    items = factories.catalog(9)
    _rule(name="tagged small", kind="exclude", target="tag", tag="small")
    _rule(
        name="no books", kind="exclude", target="category", category=items[0].category
    )
    engine = Engine(catalog_load(), Behaviour.empty())
    merch = Merchandising()
    merch.compiled(
        catalog=engine.catalog, placement="for_you", variant_id=None, now=NOW
    )
    seq = seq_latest()
    items[1].tags = "small"
    items[1].stock = 0
    items[1].save()
    items[3].category = items[1].category
    items[3].tags = ""
    items[3].save()
    added = Item.objects.create(title="New", category=items[0].category, price=3)
    changed, removed = catalog_changes(after=seq, until=seq_latest())
    patched = engine.with_changes(changed, removed)
    assert patched is not None and patched.edited_from is not None
    patches = []
    with_rows = RuleCatalog.with_rows
    monkeypatch.setattr(
        RuleCatalog,
        "with_rows",
        lambda self, rows, part: patches.append(rows) or with_rows(self, rows, part),
    )

    got = merch.compiled(
        catalog=patched.catalog,
        placement="for_you",
        variant_id=None,
        now=NOW,
        edited_from=patched.edited_from,
    )
    full = Merchandising().compiled(
        catalog=catalog_load(), placement="for_you", variant_id=None, now=NOW
    )
    assert got.excluded.tolist() == full.excluded.tolist()
    excluded = set(patched.ids[got.excluded].tolist())
    assert items[1].pk in excluded and added.pk in excluded
    assert items[3].pk not in excluded
    assert len(patches) == 1  # the edited rows only, not a new view


# --------------------------------------------------------------------------
# Inside the engine's scoring
# --------------------------------------------------------------------------
def _engine_and_rule_catalog(n: int = 30):
    """Three categories of ten; users' behaviour ties items within a category."""
    ids = np.arange(1, n + 1, dtype=np.int64)
    category = (np.arange(n) // 10).astype(np.int32)
    catalog = Catalog(
        ids=ids,
        titles=[f"Item {i}" for i in ids],
        category=category,
        category_names=["Audio", "Kitchen", "Books"],
        tags=[[] for _ in ids],
        price=np.linspace(1, 30, n).astype(np.float32),
        rating=np.full(n, 4.0, np.float32),
        year=np.full(n, np.nan, np.float32),
        active=np.ones(n, bool),
        created=np.full(n, NOW - 400 * DAY),
    )
    users, items = [], []
    for u in range(60):
        block = (u % 3) * 10
        for i in range(block, block + 10, 1 + u % 2):
            users.append(u)
            items.append(int(ids[i]))
    interactions = Interactions(
        np.array(users, np.int64),
        np.array(items, np.int64),
        np.ones(len(users), np.float32),
        NOW - DAY * np.arange(len(users), 0, -1, dtype=np.float64),
    )
    engine = Engine(catalog, Behaviour.fit(interactions, now=NOW))
    rule_catalog = RuleCatalog.build(
        ids=engine.catalog.ids,
        category=engine.catalog.category,
        category_names=engine.catalog.category_names,
        tags=engine.catalog.tags,
        price=engine.catalog.price,
        stock=None,
        created=engine.catalog.created,
    )
    return engine, rule_catalog


def _audio_fan() -> History:
    return History(
        item_ids=np.array([1, 2, 3], np.int64),
        actions=["view", "like", "cart"],
        weights=np.array([1.0, 2.5, 3.0], np.float32),
        timestamps=NOW - np.array([3.0, 2.0, 1.0]),
    )


def test_engine_lists_drop_an_excluded_category_and_stay_full() -> None:
    engine, rule_catalog = _engine_and_rule_catalog()
    plain = engine.recommend(_audio_fan(), k=10, now=NOW)
    assert [r.item_id for r in plain][:3] != []
    assert any(engine.catalog.category[r.item_id - 1] == 0 for r in plain)
    rules = rules_compile(
        [RuleSpec("exclude", "category", category="Audio")], rule_catalog, now=NOW
    )
    ruled = engine.recommend(_audio_fan(), k=10, now=NOW, rules=rules)
    assert len(ruled) == 10
    assert all(engine.catalog.category[r.item_id - 1] != 0 for r in ruled)
    # The same rules through the batch path give the same list.
    batch = engine.recommend_many([_audio_fan()], k=10, now=NOW, rules=rules)[0]
    assert [r.item_id for r in batch] == [r.item_id for r in ruled]


def test_engine_pins_caps_and_says_promoted() -> None:
    engine, rule_catalog = _engine_and_rule_catalog()
    rules = rules_compile(
        [
            RuleSpec("pin", "items", item_ids=(25,), position=2),
            RuleSpec("cap", cap=4),
        ],
        rule_catalog,
        now=NOW,
    )
    ruled = engine.recommend(_audio_fan(), k=10, now=NOW, rules=rules)
    assert len(ruled) == 10
    assert ruled[1].item_id == 25
    assert ruled[1].reasons[0] == "Promoted"
    assert len(ruled[1].reasons) <= 2
    counts = np.bincount(
        [engine.catalog.category[r.item_id - 1] for r in ruled], minlength=3
    )
    # The pinned Books item counts toward its category's cap.
    assert counts.max() <= 4
    assert counts[0] == 4
    assert not any("Promoted" in r.reasons for i, r in enumerate(ruled) if i != 1)
    # Rules that change nothing leave the list exactly as it was.
    none = rules_compile([], rule_catalog, now=NOW)
    assert [
        (r.item_id, r.reasons)
        for r in engine.recommend(_audio_fan(), k=10, now=NOW, rules=none)
    ] == [(r.item_id, r.reasons) for r in engine.recommend(_audio_fan(), k=10, now=NOW)]


def test_a_boost_lifts_an_item_into_the_list_and_says_so() -> None:
    engine, rule_catalog = _engine_and_rule_catalog()
    plain = [r.item_id for r in engine.recommend(_audio_fan(), k=5, now=NOW)]
    outside = next(i for i in range(11, 21) if i not in plain)
    rules = rules_compile(
        [RuleSpec("boost", "items", item_ids=(outside,), factor=1000.0)],
        rule_catalog,
        now=NOW,
    )
    ruled = engine.recommend(_audio_fan(), k=5, now=NOW, rules=rules)
    assert ruled[0].item_id == outside
    assert ruled[0].reasons[0] == "Promoted"


@pytest.mark.django_db
def test_staff_set_an_items_stock_in_admin(client) -> None:
    item = factories.catalog(1)[0]
    staff = get_user_model().objects.create_superuser("clerk", password="pw-123456789")
    client.force_login(staff)
    page = client.get(f"/admin/recommender/item/{item.pk}/change/")
    assert 'name="stock"' in page.content.decode()
    form = {
        "title": item.title,
        "description": "",
        "category": item.category_id,
        "tags": item.tags,
        "price": "9.50",
        "stock": "0",
        "rating": "4.0",
        "year": "",
        "external_id": "",
        "active": "on",
    }
    response = client.post(f"/admin/recommender/item/{item.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:1500]
    item.refresh_from_db()
    assert item.stock == 0
