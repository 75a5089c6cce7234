"""The validation layer every client frame goes through."""

import pytest
from pydantic import TypeAdapter

from recommender.messages import EventRequest
from sync.wire import MAX_JSON_DEPTH, FrameError, parse_frame

ADAPTER = TypeAdapter(EventRequest)


def parse(text: str):
    return parse_frame(text=text, data=None, adapter=ADAPTER, max_bytes=4096)


def code_of(text: str) -> str:
    with pytest.raises(FrameError) as caught:
        parse(text)
    return caught.value.code


def test_a_valid_event_parses():
    event = parse('{"type":"event","action":"like","item":3,"id":"x"}')
    assert (event.action, event.item, event.id) == ("like", 3, "x")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            '{"type":"event","action":"like","item":3,"id":"x","user":'
            + "[" * 40
            + "]" * 40
            + "}",
            "bad_message",
        ),
        (
            '{"type":"event","action":"like","item":3,"id":"x","user":1e999}',
            "bad_message",
        ),
        ('{"type":"event","action":"like","item":3,"id":"a\\u0000b"}', "bad_message"),
        (
            '{"type":"event","action":"like","item":3,"id":"x","user":'
            + "9" * 2000
            + "}",
            "bad_message",
        ),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "bad_message"),
    ],
    ids=[
        "deep",
        "overflowing-float",
        "nul-in-id",
        "huge-int-in-ignored-field",
        "unclosed-deep",
    ],
)
def test_hostile_values_are_bad_message(text, code):
    assert code_of(text) == code


def test_a_too_deep_frame_still_echoes_its_id():
    deep = "[" * 40 + "]" * 40
    with pytest.raises(FrameError) as caught:
        parse(
            '{"type":"event","action":"like","item":3,"id":"deep-1","user":'
            + deep
            + "}"
        )
    assert (caught.value.code, caught.value.client_id) == ("bad_message", "deep-1")


def test_brackets_inside_strings_do_not_count_as_nesting():
    event = parse('{"type":"event","action":"view","item":1,"id":"' + "[" * 60 + '"}')
    assert event.id == "[" * 60


def test_the_user_and_group_fields_are_accepted_and_carry_nothing():
    event = parse(
        '{"type":"event","action":"view","item":1,"id":"i","user":7,"group":"recs.user.7"}'
    )
    assert (event.user, event.group) == (7, "recs.user.7")
