"""The HTTP API under hostile input: bearer tokens, and schemathesis over /api/schema/."""

import json
from collections import Counter

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from recommender.models import ApiToken, BrowsingEvent
from tests.conftest import manage
from tests.security.conftest import make_user, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def create_token(username: str, name: str) -> str:
    """Issue a token in another process, as an operator would; return its text."""
    return manage("create_api_token", username, "--name", name).stdout.strip()


def post_event(client, body: dict, authorization: str | None):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    return client.post(
        "/api/events/", data=json.dumps(body), content_type="application/json", **extra
    )


def database_contains(text: str) -> list[str]:
    """Return the tables with a row whose text form contains ``text``."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            if any(text in str(row) for row in cursor.fetchall()):
                found.append(table)
    return found


def test_bearer_tokens_are_hashed_named_and_revocable(client, catalog, private_layer):
    make_user("etl")
    shopper = make_user("shopper")
    token = create_token("etl", "nightly-import")
    assert token.startswith("rs_") and len(token) > 30
    body = {
        "user": shopper.pk,
        "item": catalog.active[0],
        "action": "view",
        "id": "e-1",
    }

    refused = [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer rs_not-a-real-token",
        f"Bearer {token}x",
        f"Bearer {token[:-1]}",
        f"Basic {token}",
        token,
        "Bearer " + "A" * 5000,
    ]
    for authorization in refused:
        response = post_event(client, body, authorization)
        assert response.status_code == 401, (authorization, response.content[:200])
        assert response.json()["code"] == "unauthorized"
    assert not BrowsingEvent.objects.exists()

    response = post_event(client, body, f"Bearer {token}")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "accepted"
    assert BrowsingEvent.objects.filter(user=shopper, client_id="e-1").count() == 1

    record = ApiToken.objects.get()
    assert record.name == "nightly-import"
    assert record.key_hash != token and len(record.key_hash) == 64
    assert database_contains(token) == [], "the token text is stored somewhere"

    manage("revoke_api_token", record.prefix)
    body["id"] = "e-2"
    response = post_event(client, body, f"Bearer {token}")
    assert response.status_code == 401
    assert not BrowsingEvent.objects.filter(client_id="e-2").exists()


def test_event_with_nul_in_client_id_is_422_not_500(client, catalog, private_layer):
    """PostgreSQL cannot store NUL: the schema must refuse it, not the database."""
    make_user("etl")
    shopper = make_user("shopper")
    token = create_token("etl", "nul")
    body = {
        "user": shopper.pk,
        "item": catalog.active[0],
        "action": "view",
        "id": "a\x00b",
    }
    client.raise_request_exception = False
    response = post_event(client, body, f"Bearer {token}")
    assert response.status_code == 422, response.status_code
    assert response.json()["code"] == "bad_message"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(catalog, private_layer, capsys):
    """Property-based requests to every operation of /api/schema/: never a 5xx,
    and every response in the shape the schema documents for it.

    Requests carry a valid bearer token and a logged-in session, so generated
    bodies reach the handlers instead of stopping at authentication.
    """
    make_user("etl")
    shopper = make_user("shopper")
    token = create_token("etl", "schemathesis")
    # Uncompressed bodies: over WSGI nothing undoes a gzip Content-Encoding
    # before the schema checks read the JSON.
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
    cookies = {"sessionid": session_cookie(shopper)}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    statuses: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /api/items/",
        "GET /api/recommendations/",
        "POST /api/events/",
    }
    for operation in operations:
        for mode in (
            schemathesis.GenerationMode.POSITIVE,
            schemathesis.GenerationMode.NEGATIVE,
        ):

            @hsettings(
                max_examples=60,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                response = case.call(headers=headers, cookies=cookies)
                statuses[f"{case.operation.label} {response.status_code}"] += 1
                # Every answer, errors included, must match what the schema
                # documents for it (errors: the "default" ErrorOut response).
                case.validate_response(
                    response,
                    checks=[
                        not_a_server_error,
                        response_schema_conformance,
                        content_type_conformance,
                    ],
                )

            try:
                run()
            except Unsatisfiable:
                # Nothing to break in an operation without parameters or body.
                assert mode is schemathesis.GenerationMode.NEGATIVE
    with capsys.disabled():
        print(
            f"\nschemathesis: {sum(statuses.values())} requests, {dict(sorted(statuses.items()))}"
        )
    assert not [label for label in statuses if label.split()[-1].startswith("5")]
