"""Everything that knows the actions reads the one vocabulary."""

import json
import re
import typing

import pydantic
import pytest

from recommender import messages
from recommender.api.events import EventIn
from recommender.engine.actions import ACTION_NAMES, ACTION_WEIGHTS, actions_payload
from recommender.models import Action


def test_model_choices_wire_and_api_name_the_same_actions():
    assert Action.values == list(ACTION_NAMES)
    assert Action.CART.label == "add to cart"
    for schema in (messages.EventRequest, EventIn):
        field = schema.model_fields["action"]
        assert list(typing.get_args(field.annotation)) == list(ACTION_NAMES)


def test_wire_validation_refuses_an_action_outside_the_vocabulary():
    frame = {"type": "event", "action": "cart", "item": 3, "id": "c1"}
    assert messages.EventRequest.model_validate(frame).action == "cart"
    with pytest.raises(pydantic.ValidationError):
        messages.EventRequest.model_validate(frame | {"action": "wishlist"})


@pytest.mark.django_db
def test_the_dashboard_page_carries_the_vocabulary_for_its_scripts(client):
    page = client.get("/").content.decode()
    found = re.search(
        r'<script id="recsite-actions" type="application/json">(.*?)</script>', page
    )
    assert found, "the page renders the vocabulary with json_script"
    rows = json.loads(found.group(1))
    assert rows == actions_payload()
    assert {r["name"]: r["weight"] for r in rows} == ACTION_WEIGHTS
