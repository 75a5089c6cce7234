"""Experiment assignment: stable, proportional, bounded in time."""

import dataclasses
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from pydantic import ValidationError

from recommender.engine import Behaviour, Engine, History
from recommender.engine.experiments import (
    ExperimentSpec,
    VariantParams,
    VariantSpec,
    assignment_point,
    experiments_assign,
    variant_assign,
)
from recommender.engine.types import ScoreParams
from recommender.models import (
    BrowsingEvent,
    Category,
    Experiment,
    Impression,
    RecommendationSnapshot,
    Rule,
    Variant,
)
from recommender.services.catalog import catalog_load
from recommender.services.experiments import (
    UnknownExperiment,
    _ratio_difference,
    assignment_key_merge,
    assignment_keys,
    experiment_report,
    variants_assign,
)
from recommender.services.ranking import for_you_rank, user_variants, variant_engines
from recommender.services.recommendations import recommendations_compute
from recommender.services.rules import experiment_salt, merchandising
from recommender.services.visitors import USERNAME_PREFIX as VISITOR_PREFIX
from recommender.services.visitors import visitor_merge
from tests.factories import catalog

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_700_000_000.0


def _experiment(shares=(0.5, 0.5), salt="exp-1", start=None, end=None):
    return ExperimentSpec(
        id=1,
        name="blend",
        salt=salt,
        variants=tuple(
            VariantSpec(id=i + 1, name=f"v{i}", share=s, params={})
            for i, s in enumerate(shares)
        ),
        start=start,
        end=end,
    )


def test_every_process_assigns_the_same_variant() -> None:
    keys = [f"user-{i}" for i in range(200)]
    experiment = _experiment((0.3, 0.3, 0.4))
    here = [variant_assign(experiment, key=k, now=NOW).name for k in keys]
    script = (
        "import json, sys\n"
        "from recommender.engine.experiments import ExperimentSpec, VariantSpec,"
        " variant_assign\n"
        "e = ExperimentSpec(id=1, name='blend', salt='exp-1', variants=tuple("
        "VariantSpec(id=i + 1, name=f'v{i}', share=s, params={})"
        " for i, s in enumerate((0.3, 0.3, 0.4))))\n"
        "keys = json.loads(sys.stdin.read())\n"
        "print(json.dumps([variant_assign(e, key=k, now=1.7e9).name for k in keys]))\n"
    )
    for seed in ("1", "2"):
        # Different hash seeds: Python's own hash() would disagree.
        result = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(keys),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        assert json.loads(result.stdout) == here
    assert len(set(here)) == 3


def test_shares_split_traffic_and_the_rest_stays_out() -> None:
    experiment = _experiment((0.2, 0.3))
    counts: dict[str | None, int] = {"v0": 0, "v1": 0, None: 0}
    n = 20_000
    for i in range(n):
        variant = variant_assign(experiment, key=f"k{i}", now=NOW)
        counts[variant.name if variant else None] += 1
    # Binomial standard deviations are ~0.3 % here; 1.5 % is five of them.
    assert counts["v0"] / n == pytest.approx(0.2, abs=0.015)
    assert counts["v1"] / n == pytest.approx(0.3, abs=0.015)
    assert counts[None] / n == pytest.approx(0.5, abs=0.015)


def test_experiments_with_different_salts_assign_independently() -> None:
    a = _experiment(salt="exp-1")
    b = _experiment(salt="exp-2")
    same = sum(
        variant_assign(a, key=f"k{i}", now=NOW).name
        == variant_assign(b, key=f"k{i}", now=NOW).name
        for i in range(4000)
    )
    assert same / 4000 == pytest.approx(0.5, abs=0.04)


def test_assignment_runs_only_between_start_and_end() -> None:
    experiment = _experiment((1.0,), start=NOW, end=NOW + 60)
    assert variant_assign(experiment, key="k", now=NOW - 1) is None
    assert variant_assign(experiment, key="k", now=NOW).name == "v0"
    assert variant_assign(experiment, key="k", now=NOW + 60) is None


def test_a_user_takes_part_in_the_first_experiment_that_enrols_them() -> None:
    first = _experiment((0.5,), salt="first")
    second = _experiment((1.0,), salt="second")
    for i in range(200):
        key = f"k{i}"
        experiment, _ = experiments_assign([first, second], key=key, now=NOW)
        enrolled_first = assignment_point(key, "first") < 0.5
        assert (experiment.salt == "first") == enrolled_first


def test_shares_over_one_are_refused() -> None:
    with pytest.raises(ValueError, match="sum to"):
        _experiment((0.6, 0.5))
    with pytest.raises(ValueError, match="share"):
        VariantSpec(id=1, name="x", share=1.5, params={})


def test_variant_params_are_the_engines_score_params() -> None:
    score_fields = {f.name for f in dataclasses.fields(ScoreParams)}
    assert set(VariantParams.model_fields) == score_fields
    params = VariantParams.model_validate({"content_weight": 0.5})
    assert params.overrides() == {"content_weight": 0.5}
    # The overrides build a valid engine parameter set.
    assert (
        dataclasses.replace(ScoreParams(), **params.overrides()).content_weight == 0.5
    )
    with pytest.raises(ValidationError):
        VariantParams.model_validate({"content_wieght": 0.5})
    with pytest.raises(ValidationError):
        VariantParams.model_validate({"content_weight": -1})


# --------------------------------------------------------------------------
# Services on the database
# --------------------------------------------------------------------------
def _users(*names: str) -> list[int]:
    User = get_user_model()
    return [User.objects.create_user(name).pk for name in names]


@pytest.mark.django_db
def test_a_visitor_keeps_their_variants_when_logging_in_to_a_new_account() -> None:
    visitor, account = _users("visitor-abc", "newcomer")
    specs = [_experiment((0.5, 0.5), salt=f"exp-{i}") for i in range(8)]
    before = [
        experiments_assign(
            [s], key=assignment_keys(user_ids=[visitor])[visitor], now=NOW
        )
        for s in specs
    ]
    assert assignment_key_merge(visitor_id=visitor, user_id=account)
    after = variants_assign(user_ids=[account], experiments=specs[:1], now=NOW)
    assert after[account] == before[0][1]
    key = assignment_keys(user_ids=[account])[account]
    assert [experiments_assign([s], key=key, now=NOW) for s in specs] == before
    # The visitor row goes away at the merge; the account's key stays.
    get_user_model().objects.filter(pk=visitor).delete()
    assert assignment_keys(user_ids=[account])[account] == f"user-{visitor}"


@pytest.mark.django_db
def test_an_account_already_shown_lists_keeps_its_own_key() -> None:
    items = catalog(3)
    visitor, account, other = _users("visitor-def", "regular", "another")
    Impression.objects.create(user_id=account, item=items[0], version=1, position=1)
    assert not assignment_key_merge(visitor_id=visitor, user_id=account)
    assert assignment_keys(user_ids=[account]) == {account: f"user-{account}"}
    # A key already taken over is not replaced by a second visitor's.
    assert assignment_key_merge(visitor_id=visitor, user_id=other)
    assert not assignment_key_merge(visitor_id=account, user_id=other)
    assert assignment_keys(user_ids=[other]) == {other: f"user-{visitor}"}


def _shown(user_id: int, variant: Variant, item_ids: list[int], at) -> None:
    for position, item_id in enumerate(item_ids, start=1):
        Impression.objects.create(
            user_id=user_id,
            item_id=item_id,
            version=1,
            position=position,
            shown_at=at,
            variant=variant,
        )


@pytest.mark.django_db
def test_report_splits_impressions_and_outcomes_by_variant() -> None:
    items = [item.pk for item in catalog(6)]
    experiment = Experiment.objects.create(name="blend")
    a = Variant.objects.create(experiment=experiment, name="control", share=0.5)
    b = Variant.objects.create(experiment=experiment, name="content", share=0.5)
    other = Experiment.objects.create(name="other")
    elsewhere = Variant.objects.create(experiment=other, name="x", share=1)
    now = timezone.now()
    at = now - timedelta(minutes=50)
    users_a = _users("a1", "a2", "a3")
    users_b = _users("b1", "b2", "b3")
    for user_id in users_a + users_b:
        _shown(user_id, a if user_id in users_a else b, items[:4], at)
    _shown(_users("x1")[0], elsewhere, items[:4], at)

    def act(user_id: int, item_id: int, action: str, minutes: float) -> None:
        BrowsingEvent.objects.create(
            user_id=user_id,
            item_id=item_id,
            action=action,
            weight=1.0,
            created=at + timedelta(minutes=minutes),
        )

    act(users_a[0], items[0], "click", 5)
    act(users_a[0], items[0], "click", 45)  # after the 30-minute window
    act(users_b[0], items[0], "click", 1)
    act(users_b[1], items[1], "click", 1)
    act(users_b[1], items[1], "cart", 2)
    act(users_b[2], items[3], "purchase", 3)
    act(users_b[2], items[5], "purchase", 3)  # not shown: no impression

    report = experiment_report(
        name="blend",
        since=now - timedelta(hours=1),
        until=now,
        window=timedelta(minutes=30),
        k=2,
    )
    assert report.baseline == "control"
    control, content = report.variants
    assert (control.users, control.impressions, control.lists) == (3, 12, 3)
    assert (control.clicks, control.carts, control.purchases) == (1, 0, 0)
    assert control.ctr == pytest.approx(1 / 12)
    # P@2: one of three lists has an acted-on item in its top 2.
    assert control.precision_at_k == pytest.approx((1 / 2) / 3)
    assert (content.clicks, content.carts, content.purchases) == (2, 1, 1)
    assert content.ctr == pytest.approx(2 / 12)
    assert content.cart_rate == pytest.approx(1 / 12)
    assert content.purchase_rate == pytest.approx(1 / 12)
    # Purchase of item 4 is at rank 4: outside the top 2.
    assert content.precision_at_k == pytest.approx((1 / 2 + 1 / 2) / 3)
    assert control.vs_baseline == {}
    ctr = content.vs_baseline["ctr"]
    assert ctr.difference == pytest.approx(1 / 12)
    assert ctr.low <= ctr.difference <= ctr.high
    assert ctr.low < ctr.high
    with pytest.raises(UnknownExperiment):
        experiment_report(
            name="nope", since=now, until=now, window=timedelta(minutes=1), k=2
        )


def test_a_clear_difference_has_an_interval_that_excludes_zero() -> None:
    rng = np.random.default_rng(0)
    n = 400
    base = np.stack([rng.binomial(10, 0.10, n), np.full(n, 10)]).astype(float)
    better = np.stack([rng.binomial(10, 0.20, n), np.full(n, 10)]).astype(float)
    same = np.stack([rng.binomial(10, 0.10, n), np.full(n, 10)]).astype(float)
    clear = _ratio_difference(better, base, 0.95)
    assert clear.low > 0
    assert clear.low < 0.1 < clear.high
    unclear = _ratio_difference(same, base, 0.95)
    assert unclear.low < 0 < unclear.high
    # Too few users for an interval.
    assert _ratio_difference(better[:, :1], base, 0.95).low is None


@pytest.mark.django_db
def test_online_report_command_prints_each_variant_and_the_difference() -> None:
    items = [item.pk for item in catalog(4)]
    experiment = Experiment.objects.create(name="blend")
    a = Variant.objects.create(experiment=experiment, name="control", share=0.5)
    b = Variant.objects.create(experiment=experiment, name="content", share=0.5)
    at = timezone.now() - timedelta(minutes=10)
    for user_id in _users("a1", "a2"):
        _shown(user_id, a, items, at)
    for user_id in _users("b1", "b2"):
        _shown(user_id, b, items, at)
        BrowsingEvent.objects.create(
            user_id=user_id,
            item_id=items[0],
            action="click",
            weight=1.5,
            created=at + timedelta(minutes=1),
        )
    out = StringIO()
    call_command("online_report", "--experiment", "blend", "--k", "4", stdout=out)
    text = out.getvalue()
    assert "Experiment    blend (baseline: control)" in text
    assert "control           0.50      2       8  0.0000  0.0000" in text
    assert "content           0.50      2       8  0.2500  0.2500" in text
    assert "content - control (95% interval):" in text
    assert "ctr             +0.2500  [+0.2500, +0.2500]" in text
    out = StringIO()
    call_command("online_report", "--experiment", "blend", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert [v["users"] for v in data["variants"]] == [2, 2]
    assert data["variants"][1]["vs_baseline"]["ctr"]["difference"] == 0.25
    with pytest.raises(CommandError, match="no experiment is named"):
        call_command("online_report", "--experiment", "nope", stdout=StringIO())


# --------------------------------------------------------------------------
# Ranking under the user's variant
# --------------------------------------------------------------------------
def _two_users_in_different_variants(experiment: Experiment) -> tuple[int, int]:
    """Create users until one lands in each of the experiment's two variants."""
    salt = experiment_salt(experiment.pk)
    found: dict[int, int] = {}
    User = get_user_model()
    n = 0
    while len(found) < 2:
        user = User.objects.create_user(f"shopper{n}")
        n += 1
        index = int(assignment_point(f"user-{user.pk}", salt) >= 0.5)
        found.setdefault(index, user.pk)
    return found[0], found[1]


@pytest.mark.django_db
def test_users_in_different_variants_get_their_variants_lists() -> None:
    items = catalog(24)
    experiment = Experiment.objects.create(name="books-off")
    control = Variant.objects.create(experiment=experiment, name="control", share=0.5)
    treated = Variant.objects.create(
        experiment=experiment,
        name="no-books",
        share=0.5,
        params={"popularity_weight": 0.5},
    )
    Rule.objects.create(
        name="no books for the treated arm",
        kind="exclude",
        target="category",
        category=Category.objects.get(name="Books"),
        variant=treated,
    )
    a, b = _two_users_in_different_variants(experiment)
    merchandising.reset()
    variant_engines.reset()
    engine = Engine(catalog_load(), Behaviour.empty())
    history = History(
        item_ids=np.array([items[0].pk], np.int64),
        actions=["like"],
        weights=np.array([2.5], np.float32),
        timestamps=np.array([time.time() - 1]),
    )
    ranked = for_you_rank(engine=engine, histories={a: history, b: history}, k=10)
    assert ranked[a].variant_id == control.pk
    assert ranked[b].variant_id == treated.pk
    books = {item.pk for item in items if item.category.name == "Books"}
    a_ids = [r.item_id for r in ranked[a].recommendations]
    b_ids = [r.item_id for r in ranked[b].recommendations]
    assert set(a_ids) & books
    assert not set(b_ids) & books
    assert len(a_ids) == len(b_ids) == 10
    # The treated arm scores with its parameters: its engine is not the base.
    assert variant_engines.engine_for(engine, None) is engine
    spec = next(v for e in merchandising.current().experiments for v in e.variants)
    assert spec.id == control.pk
    treated_spec = merchandising.current().experiments[0].variants[1]
    assert (
        variant_engines.engine_for(engine, treated_spec).params.popularity_weight == 0.5
    )
    # Outside the experiment's period everyone gets the default lists.
    experiment.end = timezone.now() - timedelta(seconds=1)
    experiment.save()
    merchandising.invalidate()
    ranked = for_you_rank(engine=engine, histories={a: history, b: history}, k=10)
    assert ranked[a].variant_id is None and ranked[b].variant_id is None
    assert [r.item_id for r in ranked[b].recommendations] == [
        r.item_id for r in ranked[a].recommendations
    ]


@pytest.mark.django_db
def test_login_merge_keeps_the_visitors_variant() -> None:
    experiment = Experiment.objects.create(name="arms")
    Variant.objects.create(experiment=experiment, name="a", share=0.5)
    Variant.objects.create(experiment=experiment, name="b", share=0.5)
    salt = experiment_salt(experiment.pk)
    User = get_user_model()
    # A visitor and a new account whose own keys fall in different arms.
    account = User.objects.create_user("newcomer", password="pw-123456789")
    own = assignment_point(f"user-{account.pk}", salt) >= 0.5
    n = 0
    while True:
        visitor = User.objects.create(
            username=f"{VISITOR_PREFIX}{n:032x}", is_active=False
        )
        n += 1
        if (assignment_point(f"user-{visitor.pk}", salt) >= 0.5) != own:
            break
    merchandising.reset()
    before = user_variants(user_ids=[visitor.pk], now=time.time())[visitor.pk]
    visitor_merge(visitor_id=visitor.pk, user_id=account.pk)
    after = user_variants(user_ids=[account.pk], now=time.time())[account.pk]
    assert after == before
    assert not User.objects.filter(pk=visitor.pk).exists()


@pytest.mark.django_db
def test_each_stored_list_and_impression_records_its_variant() -> None:
    catalog(24)
    experiment = Experiment.objects.create(name="split")
    control = Variant.objects.create(experiment=experiment, name="a", share=0.5)
    treated = Variant.objects.create(experiment=experiment, name="b", share=0.5)
    a, b = _two_users_in_different_variants(experiment)
    outsider = get_user_model().objects.create_user("outsider").pk
    recommendations_compute(user_id=a, shown=True)
    recommendations_compute(user_id=b, shown=True)
    for user_id, variant in ((a, control), (b, treated)):
        snapshot = RecommendationSnapshot.objects.filter(user_id=user_id).get()
        assert snapshot.variant_id == variant.pk
        shown = Impression.objects.filter(user_id=user_id)
        assert shown.count() == 10
        assert set(shown.values_list("variant_id", flat=True)) == {variant.pk}
        assert set(shown.values_list("placement", flat=True)) == {"for_you"}
    experiment.active = False
    experiment.save()
    merchandising.invalidate()
    recommendations_compute(user_id=outsider, shown=True)
    assert set(
        Impression.objects.filter(user_id=outsider).values_list("variant_id", flat=True)
    ) == {None}
