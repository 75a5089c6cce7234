"""One JSON error shape for every /api/ error, and the API docs without a CDN."""

import json
import re

import pytest
from django.test import Client, override_settings

from recommender.services.tokens import token_create
from tests.security.conftest import make_user

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"code", "message"}


def assert_error(response, status: int, code: str) -> dict:
    """Check an error response's status, content type and shape; return its body."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def bearer() -> str:
    make_user("etl")
    return "Bearer " + token_create(username="etl", name="errors").token


@pytest.mark.parametrize("debug", [True, False])
def test_five_megabyte_event_is_a_json_413(bearer: str, debug: bool) -> None:
    """Over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 in the error shape, demo or production."""
    body = json.dumps({"user": 1, "item": 1, "action": "view", "id": "x" * 5_000_000})
    with override_settings(DEBUG=debug):
        response = Client(raise_request_exception=False).post(
            "/api/events/",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=bearer,
        )
    assert_error(response, 413, "too_large")


def test_malformed_json_is_bad_json_in_the_same_shape(bearer: str) -> None:
    response = Client().post(
        "/api/events/",
        data=b'{"user": 1, "item":',
        content_type="application/json",
        HTTP_AUTHORIZATION=bearer,
    )
    assert_error(response, 400, "bad_json")


def test_unknown_api_path_and_method_answer_in_the_shape() -> None:
    client = Client()
    assert_error(client.get("/api/no-such-thing/"), 404, "not_found")
    assert_error(client.get("/api/items/999999999/"), 404, "not_found")
    wrong = client.delete("/api/events/")
    body = assert_error(wrong, 405, "method_not_allowed")
    assert "POST" in wrong["Allow"] and "POST" in body["message"]
    assert_error(client.get("/api/events/"), 405, "method_not_allowed")


def test_validation_and_auth_errors_keep_the_shape(bearer: str) -> None:
    client = Client()
    assert_error(
        client.post("/api/events/", data={}, content_type="application/json"),
        401,
        "unauthorized",
    )
    response = client.post(
        "/api/events/",
        data={"user": 1, "item": 1, "action": "stare", "id": "a"},
        content_type="application/json",
        HTTP_AUTHORIZATION=bearer,
    )
    assert_error(response, 422, "bad_message")


def test_server_error_is_json_without_a_traceback(monkeypatch, caplog) -> None:
    """A crash inside the API: JSON 500 for the caller, the traceback logged once."""
    from recommender.api import events

    def broken(self, request, token):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(events.BearerToken, "authenticate", broken)
    for debug in (True, False):
        caplog.clear()
        with override_settings(DEBUG=debug):
            response = Client(raise_request_exception=False).post(
                "/api/events/",
                data={"user": 1, "item": 1, "action": "view", "id": "c1"},
                content_type="application/json",
                HTTP_AUTHORIZATION="Bearer anything",
            )
        body = assert_error(response, 500, "server_error")
        assert "fire" not in body["message"] and "Traceback" not in response.text
        crashes = [r for r in caplog.records if r.exc_info]
        assert len(crashes) == 1, [r.getMessage() for r in caplog.records]
        assert not [
            r for r in caplog.records if "Internal Server Error" in r.getMessage()
        ]


def test_schema_documents_the_error_shape_on_every_operation() -> None:
    schema = Client().get("/api/schema/").json()
    error = schema["components"]["schemas"]["ErrorOut"]
    assert set(error["required"]) == ERROR_KEYS
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            default = operation["responses"]["default"]["content"]["application/json"]
            assert default["schema"] == {"$ref": "#/components/schemas/ErrorOut"}, (
                method,
                path,
            )


def test_api_docs_load_only_local_assets() -> None:
    """The docs page works offline: every script and stylesheet is served by us."""
    client = Client()
    redirect = client.get("/api/docs")
    assert redirect.status_code in (301, 308)
    assert redirect["Location"] == "/api/docs/"
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html[:500]
    assert not [a for a in assets if "//" in a], "the docs page loads from elsewhere"
    scripts = [a for a in assets if a.endswith(".js")]
    assert any("swagger-ui-bundle" in a for a in scripts), scripts
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert b"".join(response.streaming_content), asset
    settings_json = re.search(
        r'id="swagger-settings">\s*(\{.*?\})\s*</script>', html, re.DOTALL
    )
    assert settings_json and json.loads(settings_json.group(1))["url"] == "/api/schema/"
