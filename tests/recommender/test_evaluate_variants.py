"""``evaluate --experiment``: every variant of an experiment scored on one split."""

import json
import os
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from recommender.models import Category, Experiment, Item, Rule, Variant
from recommender.services.evaluation import evaluation_load, evaluation_run
from recommender.services.evaluation_variants import evaluation_variants_run
from tests.recommender.test_evaluate import SHARED, write_clustered

pytestmark = pytest.mark.django_db

#: Popularity only: what the clustered data set punishes.
POPULAR_ONLY = {"behaviour_weight": 0, "content_weight": 0, "new_weight": 0}


def _clustered(tmp_path):
    directory = tmp_path / "clustered"
    write_clustered(directory)
    return directory, evaluation_load(
        directory, directory / "train.csv", directory / "test.csv"
    )


def _experiment() -> dict[str, Variant]:
    """Four arms: the default, popularity only, no Action films, a pinned film."""
    experiment = Experiment.objects.create(name="blend")
    arms = {
        "control": Variant.objects.create(
            experiment=experiment, name="control", share=0.25
        ),
        "popular": Variant.objects.create(
            experiment=experiment, name="popular", share=0.25, params=POPULAR_ONLY
        ),
        "no-action": Variant.objects.create(
            experiment=experiment, name="no-action", share=0.25
        ),
        "pinned": Variant.objects.create(
            experiment=experiment, name="pinned", share=0.25
        ),
    }
    Rule.objects.create(
        name="No Action",
        kind="exclude",
        target="category",
        category=Category.objects.create(name="Action"),
        variant=arms["no-action"],
    )
    # Film 81 (a Drama of 1990) was imported: its item carries the data set's id.
    pinned = Item.objects.create(title="Movie 81", external_id="ml:81")
    rule = Rule.objects.create(
        name="Launch", kind="pin", target="items", position=1, variant=arms["pinned"]
    )
    rule.items.add(pinned)
    # Staff rules for another placement do not shape the personal list.
    Rule.objects.create(
        name="No Horror in trending",
        kind="exclude",
        target="category",
        category=Category.objects.create(name="Horror"),
        placement="trending",
    )
    return arms


def test_each_variant_is_scored_through_its_parameters_and_rules(tmp_path) -> None:
    _, ev = _clustered(tmp_path)
    _experiment()
    result = evaluation_variants_run(ev, experiment="blend", k=5)
    by_name = {v.name: v for v in result.variants}
    assert [v.name for v in result.variants] == [
        "control",
        "popular",
        "no-action",
        "pinned",
    ]
    assert result.baseline == "control"
    # The baseline with no parameters and no rules is plain `evaluate`: the
    # same engine, the same lists, the same figures.
    plain = evaluation_run(ev, k=5)
    assert by_name["control"].metrics == plain.metrics
    assert by_name["control"].rules == []
    # Every variant is scored on the same users.
    assert {v.metrics["users"] for v in result.variants} == {plain.metrics["users"]}

    # Popularity only loses the clusters the engine recovers.
    popular = by_name["popular"]
    assert popular.params == POPULAR_ONLY
    assert popular.metrics["precision"] < by_name["control"].metrics["precision"] / 3
    assert popular.vs_baseline["precision"] == pytest.approx(
        popular.metrics["precision"] - plain.metrics["precision"]
    )

    # The exclusion applies inside the ranking: no Action film (1-30) in any
    # list, which stay full.
    runs = result.runs
    assert not np.isin(runs["no-action"].rec_items, np.arange(1, 31)).any()
    assert np.isin(runs["control"].rec_items, np.arange(1, 31)).any()
    _, counts = np.unique(runs["no-action"].rec_users, return_counts=True)
    assert (counts == 5).all()
    assert by_name["no-action"].rules == ["No Action"]
    assert by_name["no-action"].metrics["precision"] < plain.metrics["precision"]

    # The pin, matched through the imported item's external id, leads every
    # list of a user who has not seen film 81.
    pinned = runs["pinned"]
    first = pinned.rec_items[pinned.rec_ranks == 1]
    seen = set(
        ev.train.users[ev.train.items == 81].tolist()
    )  # history is never recommended
    unseen_first = first[~np.isin(pinned.rec_users[pinned.rec_ranks == 1], list(seen))]
    assert unseen_first.size and (unseen_first == 81).all()
    assert by_name["pinned"].rules_unmatched == []
    # The trending-only rule shapes none of them.
    assert all("No Horror in trending" not in v.rules for v in result.variants)


def test_a_rule_that_matches_nothing_offline_is_named(tmp_path) -> None:
    _, ev = _clustered(tmp_path)
    experiment = Experiment.objects.create(name="shop")
    Variant.objects.create(experiment=experiment, name="a", share=0.5)
    b = Variant.objects.create(experiment=experiment, name="b", share=0.5)
    Rule.objects.create(
        name="No Kitchen",
        kind="exclude",
        target="category",
        category=Category.objects.create(name="Kitchen"),
        variant=b,
    )
    not_imported = Item.objects.create(title="Lamp")
    pin = Rule.objects.create(
        name="Lamp first", kind="pin", target="items", position=1, variant=b
    )
    pin.items.add(not_imported)
    result = evaluation_variants_run(ev, experiment="shop", k=5)
    b_score = result.variants[1]
    assert sorted(b_score.rules) == ["Lamp first", "No Kitchen"]
    assert sorted(b_score.rules_unmatched) == ["Lamp first", "No Kitchen"]
    # Nothing applied: the lists are the baseline's.
    assert result.variants[1].metrics == result.variants[0].metrics


def test_evaluate_command_prints_a_row_per_variant_and_writes_json(tmp_path) -> None:
    directory, _ = _clustered(tmp_path)
    _experiment()
    out = StringIO()
    args = [
        "--data",
        str(directory),
        "--train",
        str(directory / "train.csv"),
        "--test",
        str(directory / "test.csv"),
        "--k",
        "5",
    ]
    call_command(
        "evaluate",
        *args,
        "--experiment",
        "blend",
        "--json",
        str(tmp_path / "variants.json"),
        stdout=out,
        verbosity=0,
    )
    text = out.getvalue()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| variant | share | rules | users | precision@5")
    assert "online CTR" in rows[0]
    assert [row.split("|")[1].strip() for row in rows[1:]] == [
        "control",
        "popular",
        "no-action",
        "pinned",
    ]
    assert "popular - control: precision -" in text
    payload = json.loads((tmp_path / "variants.json").read_text())
    assert payload["experiment"] == "blend" and payload["protocol"] == "static"
    assert [v["name"] for v in payload["variants"]] == [
        "control",
        "popular",
        "no-action",
        "pinned",
    ]
    # Nobody was shown a list yet: the online side is there, and empty.
    assert [v["impressions"] for v in payload["online"]["variants"]] == [0, 0, 0, 0]

    replay = StringIO()
    call_command(
        "evaluate",
        *args,
        "--experiment",
        "blend",
        "--replay",
        stdout=replay,
        verbosity=0,
    )
    assert (
        "| variant | share | rules | steps | HR@5 | NDCG@5 | MRR@5" in replay.getvalue()
    )

    with pytest.raises(CommandError, match="no experiment is named 'nope'"):
        call_command("evaluate", *args, "--experiment", "nope", stdout=StringIO())


@pytest.mark.slow
def test_variants_on_the_shared_movielens_split(tmp_path) -> None:
    if not (SHARED / "split/train.csv").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"shared data set missing at {SHARED}")
        pytest.skip(f"shared data set not found at {SHARED}")
    experiment = Experiment.objects.create(name="ml")
    Variant.objects.create(experiment=experiment, name="engine", share=0.5)
    Variant.objects.create(
        experiment=experiment, name="popular", share=0.5, params=POPULAR_ONLY
    )
    ev = evaluation_load(SHARED, SHARED / "split/train.csv", SHARED / "split/test.csv")
    result = evaluation_variants_run(ev, experiment="ml", k=10)
    engine, popular = result.variants
    assert engine.metrics["users"] == popular.metrics["users"] == 610
    # The live engine beats popularity on MovieLens by a wide margin.
    assert popular.vs_baseline["ndcg"] < 0
    assert engine.metrics["ndcg"] > 1.3 * popular.metrics["ndcg"]
