"""The HTTP API: snapshot + seq, recommendations, token-authenticated ingestion, health."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from recommender.models import ApiToken, BrowsingEvent
from recommender.services.tokens import token_create, token_revoke
from sync.selectors import seq_latest
from tests.factories import catalog, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def test_items_snapshot_carries_the_seq_it_reflects_and_only_active_items():
    items = catalog(5)
    items[0].active = False
    items[0].save()
    body = Client().get("/api/items/").json()
    assert body["seq"] == seq_latest()
    assert sorted(entry["id"] for entry in body["items"]) == sorted(
        i.pk for i in items[1:]
    )
    first = next(entry for entry in body["items"] if entry["id"] == items[1].pk)
    assert first["title"] == "Item 1" and first["category"] == "Games"
    assert first["tags"] == ["blue", "large"]


def test_recommendations_need_a_session_and_return_the_users_own_list():
    catalog(12)
    assert Client().get("/api/recommendations/").status_code == 401
    client = Client()
    user_id, _ = session_cookie("dave")
    client.force_login(get_user_model().objects.get(pk=user_id))
    body = client.get("/api/recommendations/").json()
    assert body["type"] == "recommendations" and len(body["items"]) == 10


def post_event(token: str | None, payload: dict) -> tuple[int, dict]:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = Client().post(
        "/api/events/",
        data=json.dumps(payload),
        content_type="application/json",
        **headers,
    )
    return response.status_code, response.json()


def test_event_ingestion_with_a_bearer_token():
    items = catalog(6)
    user_id, _ = session_cookie("erin")
    issued = token_create(username="erin", name="shop-backend")
    payload = {
        "user": user_id,
        "item": items[2].pk,
        "action": "purchase",
        "id": "order-1",
    }
    status, body = post_event(issued.token, payload)
    assert status == 202 and body["status"] == "accepted" and body["version"] >= 1
    status, body = post_event(issued.token, payload)
    assert status == 202 and body["status"] == "duplicate"
    assert BrowsingEvent.objects.filter(user_id=user_id).count() == 1
    assert not ApiToken.objects.filter(key_hash__contains=issued.token).exists()
    assert issued.token not in str(list(ApiToken.objects.values()))


def test_event_ingestion_rejects_bad_tokens_and_bad_bodies():
    items = catalog(3)
    user_id, _ = session_cookie("fay")
    issued = token_create(username="fay", name="x")
    good = {"user": user_id, "item": items[0].pk, "action": "view", "id": "a"}
    assert post_event(None, good)[0] == 401
    assert post_event("rs_unknown", good)[0] == 401
    status, body = post_event(issued.token, {**good, "item": 999999})
    assert (status, body["code"]) == (422, "unknown_item")
    status, body = post_event(issued.token, {**good, "action": "steal"})
    assert (status, body["code"]) == (422, "bad_message")
    status, body = post_event(issued.token, {**good, "user": 999999})
    assert (status, body["code"]) == (422, "unknown_user")
    token_revoke(prefix=issued.record.prefix)
    status, body = post_event(issued.token, good)
    assert (status, body["code"]) == (401, "unauthorized")


def test_openapi_schema_describes_the_api():
    schema = Client().get("/api/schema/").json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/items/", "/api/recommendations/", "/api/events/"} <= set(
        schema["paths"]
    )


def test_healthz_checks_database_and_channel_layer():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


def test_metrics_need_staff_or_token_and_parse_as_prometheus(settings):
    assert Client().get("/metrics").status_code == 401
    settings.METRICS_TOKEN = "scrape-secret"
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "recsite_ws_connections",
        "recsite_events",
        "recsite_event_to_push_seconds",
        "recsite_broadcast_failures",
        "recsite_changelog_lag",
    } <= names


def test_event_ingestion_names_the_user_by_username_and_a_resend_changes_nothing():
    from recommender.models import RecommendationSnapshot

    items = catalog(12)
    user_id, _ = session_cookie("gil")
    issued = token_create(username="gil", name="shop-backend")
    payload = {"user": "gil", "item": items[3].pk, "action": "cart", "id": "o-7"}
    status, body = post_event(issued.token, payload)
    assert (status, body["status"]) == (202, "accepted")
    assert BrowsingEvent.objects.filter(user_id=user_id, action="cart").count() == 1
    version = body["version"]
    snapshots = RecommendationSnapshot.objects.filter(user_id=user_id).count()

    status, body = post_event(issued.token, payload)
    assert (status, body["status"]) == (202, "duplicate")
    assert body["version"] == version, "a resend does not raise the list's version"
    assert RecommendationSnapshot.objects.filter(user_id=user_id).count() == snapshots
    # The numeric id still works for existing clients and names the same list.
    status, body = post_event(issued.token, {**payload, "user": user_id})
    assert (status, body["status"], body["version"]) == (202, "duplicate", version)
    status, body = post_event(issued.token, {**payload, "user": user_id, "id": "o-8"})
    assert (status, body["version"]) == (202, version + 1)


def test_event_ingestion_refuses_unknown_and_visitor_usernames():
    items = catalog(3)
    session_cookie("hal")
    issued = token_create(username="hal", name="x")
    good = {"user": "hal", "item": items[0].pk, "action": "view", "id": "a"}
    for user in ("nobody", "3", "hal\x00"):
        status, body = post_event(issued.token, {**good, "user": user})
        assert status == 422 and body["code"] in {"unknown_user", "bad_message"}, user
    get_user_model().objects.create(username="visitor-abc", is_active=False)
    status, body = post_event(issued.token, {**good, "user": "visitor-abc"})
    assert (status, body["code"]) == (422, "unknown_user")
    assert not BrowsingEvent.objects.exists()


def test_openapi_schema_says_user_may_be_a_username():
    schema = Client().get("/api/schema/").json()
    user = schema["components"]["schemas"]["EventIn"]["properties"]["user"]
    assert "username" in user["description"]
    assert {"string", "integer"} <= {
        option.get("type") for option in user.get("anyOf", [])
    }


def test_ingested_events_are_counted_on_metrics_by_source(settings):
    settings.METRICS_TOKEN = "scrape-secret"

    def api_purchases() -> float:
        text = (
            Client()
            .get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
            .content.decode()
        )
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "recsite_events_total"
            and sample.labels == {"action": "purchase", "source": "api"}
        )

    items = catalog(6)
    session_cookie("jo")
    issued = token_create(username="jo", name="shop")
    before = api_purchases()
    payload = {"user": "jo", "item": items[1].pk, "action": "purchase", "id": "p1"}
    assert post_event(issued.token, payload)[0] == 202
    assert post_event(issued.token, payload)[0] == 202  # a resend stores nothing
    assert api_purchases() == before + 1
