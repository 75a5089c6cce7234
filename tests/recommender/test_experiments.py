"""Experiment assignment: stable, proportional, bounded in time."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from recommender.engine.experiments import (
    ExperimentSpec,
    VariantParams,
    VariantSpec,
    assignment_point,
    experiments_assign,
    variant_assign,
)
from recommender.services.engine import ScoreParams

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
