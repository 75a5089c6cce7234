"""Management commands through call_command, on the real database."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from recommender.models import (
    ApiToken,
    BrowsingEvent,
    Category,
    FittedModel,
    Impression,
    Item,
    RecommendationSnapshot,
)
from recommender.services.recommendations import recommendations_compute
from recommender.services.tokens import token_authenticate
from sync.models import Change
from tests.factories import catalog, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_seed_demo_is_deterministic_realistic_and_idempotent():
    output = run("seed_demo", "--items", "500", "--users", "50", "--accounts")
    assert "login: staff / " in output and "login: shopper / " in output
    assert Item.objects.count() == 500
    assert Category.objects.count() >= 10
    assert Item.objects.exclude(tags="").count() == 500
    assert BrowsingEvent.objects.values("user").distinct().count() == 50
    assert FittedModel.objects.exists()
    assert Change.objects.filter(model="item").count() == 500, (
        "bulk writes reach the log"
    )
    titles = list(Item.objects.order_by("id").values_list("title", "price")[:20])
    events = BrowsingEvent.objects.count()
    run("seed_demo", "--items", "500", "--users", "50")
    assert Item.objects.count() == 500 and BrowsingEvent.objects.count() == events
    Item.objects.all().delete()
    BrowsingEvent.objects.all().delete()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username__startswith="shopper").delete()
    run("seed_demo", "--items", "500", "--users", "50")
    again = list(Item.objects.order_by("id").values_list("title", "price")[:20])
    assert again == titles, "same seed, same catalog"
    assert BrowsingEvent.objects.count() == events


def test_create_api_token_prints_a_token_whose_hash_alone_is_stored():
    session_cookie("ops")
    token = run("create_api_token", "ops", "--name", "importer").strip()
    assert token_authenticate(token=token).name == "importer"
    assert not ApiToken.objects.filter(key_hash=token).exists()
    with pytest.raises(CommandError):
        run("create_api_token", "nobody")


def test_recompute_recommendations_refits_and_stores_new_versions():
    items = catalog(12)
    user_id, _ = session_cookie("gina")
    BrowsingEvent.objects.create(
        user_id=user_id, item=items[0], action="like", weight=2.5
    )
    output = run("recompute_recommendations")
    assert "Recomputed and pushed 1 users" in output
    snapshot = RecommendationSnapshot.objects.get(user_id=user_id)
    assert snapshot.version == 1 and items[0].pk not in [
        e["id"] for e in snapshot.items
    ]
    run("recompute_recommendations", "--user", "gina", "--no-refit")
    assert (
        RecommendationSnapshot.objects.filter(user_id=user_id).latest("version").version
        == 2
    )


def test_online_report_counts_impressions_clicks_and_precision():
    items = catalog(12)
    user_id, _ = session_cookie("hal")
    shown = recommendations_compute(user_id=user_id, shown=True)
    assert Impression.objects.filter(user_id=user_id).count() == 10
    first, second = shown["items"][0]["id"], shown["items"][1]["id"]
    BrowsingEvent.objects.create(
        user_id=user_id, item_id=first, action="click", weight=1.5
    )
    BrowsingEvent.objects.create(
        user_id=user_id, item_id=second, action="cart", weight=3
    )
    output = run("online_report", "--since", "1h", "--window", "30m")
    assert "Impressions   10" in output
    assert "Clicks        1" in output
    assert "CTR           0.1000" in output
    assert "Precision@10  0.2000" in output
    assert len(items) == 12
