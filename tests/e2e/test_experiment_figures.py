"""Per-variant figures of a running experiment in /metrics, the ops API and the ops page.

Shoppers hashed into two variants browse over real WebSockets: those in the
baseline click the top item of their list, those in the other variant put it
in their cart. Prometheus, the operator API and the operator page then show
the same per-variant numbers, and the difference with its interval.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, run_db
from tests.support.accounts import login
from tests.support.sockets import RECS_PATH, open_socket, recv_json

pytestmark = pytest.mark.django_db(transaction=True)

EXPERIMENT = "blend"
PER_VARIANT = 2


def _experiment_with_shoppers() -> dict[str, list[str]]:
    """Create a two-arm experiment and shoppers until each arm has two."""
    from django.contrib.auth import get_user_model

    from recommender.engine.experiments import assignment_point
    from recommender.models import Experiment, Variant
    from recommender.services.rules import experiment_salt

    experiment = Experiment.objects.create(name=EXPERIMENT)
    Variant.objects.create(experiment=experiment, name="control", share=0.5)
    Variant.objects.create(
        experiment=experiment,
        name="content",
        share=0.5,
        params={"content_weight": 0.5},
    )
    salt = experiment_salt(experiment.pk)
    arms: dict[str, list[str]] = {"control": [], "content": []}
    user_model = get_user_model()
    n = 0
    while min(len(names) for names in arms.values()) < PER_VARIANT:
        user = user_model.objects.create_user(f"arm{n}", password=PASSWORD)
        n += 1
        arm = (
            "control" if assignment_point(f"user-{user.pk}", salt) < 0.5 else "content"
        )
        if len(arms[arm]) < PER_VARIANT:
            arms[arm].append(user.username)
    return arms


def _browse(server: Any, username: str, action: str) -> None:
    """Log in, take the first list, act on its top item, take the next list."""
    session = login(server.http_url, username, PASSWORD)
    with open_socket(server, RECS_PATH, session) as ws:
        first = recv_json(ws, 20)
        assert first["type"] == "recommendations" and first["items"], first
        ws.send(
            json.dumps(
                {
                    "type": "event",
                    "action": action,
                    "item": first["items"][0]["id"],
                    "id": f"{username}-1",
                }
            )
        )
        assert recv_json(ws, 20) == {"type": "ack", "id": f"{username}-1"}
        after = recv_json(ws, 20)
        assert after["type"] == "recommendations"


def _expected() -> dict[str, dict[str, int]]:
    """Count, from the database, what each variant showed."""
    from recommender.models import Impression

    out: dict[str, dict[str, int]] = {}
    for name in ("control", "content"):
        shown = Impression.objects.filter(
            variant__experiment__name=EXPERIMENT, variant__name=name
        )
        out[name] = {
            "impressions": shown.count(),
            "users": shown.values("user_id").distinct().count(),
        }
    return out


def _samples(text: str, name: str) -> dict[tuple, float]:
    """Return ``{labels: value}`` of one metric of a Prometheus exposition."""
    out = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(1))))
            out[labels] = float(match.group(2))
    return out


def _variant(text: str, name: str, variant: str) -> float:
    key = (("experiment", EXPERIMENT), ("variant", variant))
    return _samples(text, f"recsite_experiment_{name}")[key]


def test_variant_figures_reach_metrics_the_ops_api_and_the_ops_page(
    new_tab, catalog, live_server_url
) -> None:
    from recsite.experiment_figures import figures

    arms = run_db(_experiment_with_shoppers)
    port = live_server_url.rsplit(":", 1)[1]
    server = SimpleNamespace(
        http_url=live_server_url,
        ws_url=f"ws://127.0.0.1:{port}",
        origin=live_server_url,
    )
    for username in arms["control"]:
        _browse(server, username, "click")
    for username in arms["content"]:
        _browse(server, username, "cart")
    expected = run_db(_expected)
    figures.reset()  # what was kept before these shoppers came is stale

    def client(username: str | None) -> httpx.Client:
        cookies = (
            {"sessionid": login(live_server_url, username, PASSWORD)}
            if username
            else {}
        )
        return httpx.Client(base_url=live_server_url, cookies=cookies, timeout=30)

    with client(None) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/ops/experiments/").status_code == 401
    with client("shopper") as shopper:
        assert shopper.get("/ops/experiments/").status_code == 403
    with client("staff") as staff:
        text = staff.get("/metrics").text
        api = staff.get("/ops/experiments/").json()

    # /metrics: one series per variant, the counts the database holds.
    for variant in ("control", "content"):
        assert _variant(text, "users", variant) == PER_VARIANT
        assert (
            _variant(text, "impressions", variant) == expected[variant]["impressions"]
        )
        assert _variant(text, "share", variant) == 0.5
    assert _variant(text, "clicks", "control") == PER_VARIANT
    assert _variant(text, "clicks", "content") == 0
    assert _variant(text, "carts", "content") == PER_VARIANT
    assert _variant(text, "carts", "control") == 0
    ctr = PER_VARIANT / expected["control"]["impressions"]
    assert _variant(text, "ctr", "control") == pytest.approx(ctr)
    assert _variant(text, "ctr", "content") == 0
    diff_key = (
        ("baseline", "control"),
        ("experiment", EXPERIMENT),
        ("metric", "ctr"),
        ("variant", "content"),
    )
    assert _samples(text, "recsite_experiment_difference")[diff_key] == pytest.approx(
        -ctr
    )
    # Two users a side: an interval, entirely below zero (every control
    # user clicked one item of the same number of impressions).
    high = _samples(text, "recsite_experiment_difference_high")[diff_key]
    low = _samples(text, "recsite_experiment_difference_low")[diff_key]
    assert low <= -ctr + 1e-9 and high < 0

    # The operator API: the same report.
    (report,) = api["experiments"]
    assert report["experiment"] == EXPERIMENT and report["baseline"] == "control"
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["control"]["clicks"] == PER_VARIANT
    assert by_name["content"]["carts"] == PER_VARIANT
    assert by_name["content"]["impressions"] == expected["content"]["impressions"]
    assert by_name["content"]["vs_baseline"]["ctr"]["high"] == pytest.approx(high)

    # The operator page shows them in its Experiments section.
    tab = new_tab()
    tab.login("staff", next_path="/ops/")
    page = tab.page
    article = page.locator(
        f"[data-testid='experiments'] article[data-experiment='{EXPERIMENT}']"
    )
    expect(article).to_be_visible()
    control = article.locator("tr[data-variant='control']")
    content = article.locator("tr[data-variant='content']")
    expect(control.locator("[data-field='clicks']")).to_have_text(str(PER_VARIANT))
    expect(control.locator("[data-field='users']")).to_have_text(str(PER_VARIANT))
    expect(content.locator("[data-field='carts']")).to_have_text(str(PER_VARIANT))
    expect(content.locator("[data-field='impressions']")).to_have_text(
        str(expected["content"]["impressions"])
    )
    difference = article.locator("li[data-variant='content'][data-metric='ctr']")
    expect(difference).to_have_attribute("data-verdict", "worse")
    expect(difference).to_contain_text("[")
    expect(
        page.locator("[data-testid='experiments'] [data-field='empty']")
    ).to_be_hidden()
    tab.screenshot("08-operator-view-experiments", full_page=True)
