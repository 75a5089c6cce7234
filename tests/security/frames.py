"""Hypothesis strategies for hostile and valid client frames, each with its expected answer.

Every generated :class:`Case` carries what the server must answer, decided by
construction (how the frame was built), not by re-running the server's parser:

- ``event``: a well-formed event; the answer is ``ack`` + ``recommendations``
  (``known``), ``unknown_item`` (not ``known``), or ``rate_limited`` when the
  token-bucket model says so;
- ``resumed`` / ``reset``: a well-formed resume on ``/ws/sync/``;
- an error code (``bad_json``, ``bad_message``, ``too_large``) with the client
  id the error must echo (``None`` when none can be read).
"""

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

ACTIONS = ("view", "click", "like", "cart", "purchase")
REQUIRED = ("type", "action", "item", "id")
IGNORED = ("user", "group")
MAX_ITEM_ID = 2**63 - 1
# Python's json parser gives up (RecursionError) at this depth whatever the stack.
DEPTH_ALWAYS_TOO_DEEP = 1000
PAD = "__pad__"


@dataclass(frozen=True)
class Case:
    kind: str  # what was generated, for the tally
    target: str  # "recs" or "sync"
    text: str | None
    data: bytes | None
    expect: str  # "event", "resumed", "reset" or an error code
    client_id: Any = None  # id the answer must carry
    known: bool = False  # for "event": the item is active


def echoed_id(obj: Any) -> Any:
    """Return the id an error must echo: a short string or a JSON-safe integer."""
    if not isinstance(obj, dict):
        return None
    value = obj.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) <= 64:
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return value
    return None


def sized(case: Case, max_bytes: int) -> Case:
    """Return ``case``, or a ``too_large`` case when its frame exceeds the limit."""
    size = len(case.text.encode("utf-8")) if case.text is not None else len(case.data)
    if size > max_bytes:
        return Case(case.kind, case.target, case.text, case.data, "too_large")
    return case


# NUL is left out here: PostgreSQL cannot store it, and the dedicated tests in
# test_validation.py pin that case down (it crashed the consumer).
client_ids = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=64
).filter(lambda s: PAD not in s)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=8), inner, max_size=3),
    ),
    max_leaves=8,
)


@st.composite
def dumped(draw: st.DrawFn, obj: Any) -> str:
    """Return ``obj`` as JSON text with a drawn key order, spacing and escaping."""
    if isinstance(obj, dict):
        keys = draw(st.permutations(list(obj)))
        obj = {key: obj[key] for key in keys}
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (",\n  ", " :\t")]))
    return json.dumps(
        obj, separators=separators, ensure_ascii=draw(st.booleans()), allow_nan=False
    )


class Frames:
    """Strategies for one catalog, one victim user id and the current sync seq."""

    def __init__(
        self,
        *,
        active: list[int],
        unknown: list[int],
        victim: int,
        seq: int,
        max_bytes: int,
        real_limit: bool = False,
    ) -> None:
        self.active = active
        self.unknown = unknown
        self.victim = victim
        self.seq = seq
        self.max_bytes = max_bytes
        self.real_limit = (
            real_limit  # frames go to a server with Python's default limit
        )

    # -- building blocks ---------------------------------------------------------

    @st.composite
    def event_obj(draw: st.DrawFn, self, known: bool = True) -> dict[str, Any]:
        """Return a well-formed event; ``user``/``group`` claims are sometimes added."""
        item = draw(st.sampled_from(self.active if known else self.unknown))
        obj: dict[str, Any] = {
            "type": "event",
            "action": draw(st.sampled_from(ACTIONS)),
            "item": item,
            "id": draw(client_ids),
        }
        if draw(st.booleans()):
            obj["user"] = draw(
                st.one_of(
                    st.just(self.victim),
                    # Out of 64 bits is a bad_message (the "huge_int" kind).
                    st.integers(min_value=-(2**63), max_value=2**63 - 1),
                    st.text(max_size=20),
                    st.none(),
                )
            )
        if draw(st.booleans()):
            obj["group"] = draw(
                st.one_of(
                    st.just(f"recs.user.{self.victim}"), st.text(max_size=30), st.none()
                )
            )
        return obj

    def on(
        self,
        target: str,
        kind: str,
        text: str | None = None,
        data: bytes | None = None,
        expect: str = "bad_message",
        client_id: Any = None,
        known: bool = False,
    ) -> Case:
        return sized(
            Case(kind, target, text, data, expect, client_id, known), self.max_bytes
        )

    # -- /ws/recommendations/ ----------------------------------------------------

    @st.composite
    def valid(draw: st.DrawFn, self) -> Case:
        obj = draw(self.event_obj(known=True))
        return self.on(
            "recs",
            "valid",
            draw(dumped(obj)),
            expect="event",
            client_id=obj["id"],
            known=True,
        )

    @st.composite
    def unknown_item(draw: st.DrawFn, self) -> Case:
        obj = draw(self.event_obj(known=False))
        return self.on(
            "recs",
            "unknown_item",
            draw(dumped(obj)),
            expect="event",
            client_id=obj["id"],
            known=False,
        )

    @st.composite
    def wrong_type(draw: st.DrawFn, self) -> Case:
        obj = draw(self.event_obj())
        field = draw(st.sampled_from(REQUIRED))
        wrong = {
            "type": st.one_of(st.text().filter(lambda s: s != "event"), json_values),
            "action": st.one_of(
                st.text().filter(lambda s: s not in ACTIONS), json_values
            ),
            "item": st.one_of(
                st.text(max_size=10),
                st.floats(allow_nan=False, allow_infinity=False),
                st.booleans(),
                st.none(),
                st.lists(st.integers(), max_size=3),
                st.integers(max_value=0),
                st.integers(min_value=MAX_ITEM_ID + 1),
            ),
            "id": st.one_of(
                st.integers(),
                st.none(),
                st.booleans(),
                st.floats(allow_nan=False, allow_infinity=False),
                st.just(""),
                st.text(min_size=65, max_size=80),
                st.lists(st.text(max_size=3), max_size=3),
            ),
        }[field]
        value = draw(wrong)
        if field in ("type", "action"):
            assume(not isinstance(value, str) or value not in ("event", *ACTIONS))
        obj[field] = value
        return self.on(
            "recs", f"wrong_type:{field}", draw(dumped(obj)), client_id=echoed_id(obj)
        )

    @st.composite
    def missing(draw: st.DrawFn, self) -> Case:
        obj = draw(self.event_obj())
        gone = draw(st.sets(st.sampled_from(REQUIRED), min_size=1))
        obj = {key: value for key, value in obj.items() if key not in gone}
        return self.on(
            "recs", "missing_field", draw(dumped(obj)), client_id=echoed_id(obj)
        )

    @st.composite
    def extra(draw: st.DrawFn, self) -> Case:
        obj = draw(self.event_obj())
        key = draw(
            st.text(max_size=12).filter(lambda k: k not in (*REQUIRED, *IGNORED))
        )
        obj[key] = draw(json_values)
        return self.on(
            "recs", "extra_field", draw(dumped(obj)), client_id=echoed_id(obj)
        )

    @st.composite
    def nan(draw: st.DrawFn, self) -> Case:
        """NaN/Infinity anywhere, even in an ignored field: never a number."""
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        obj = draw(self.event_obj())
        field = draw(st.sampled_from([*REQUIRED, *IGNORED, "extra"]))
        obj[field] = PAD
        text = draw(dumped(obj)).replace(json.dumps(PAD), token, 1)
        return self.on("recs", "nan_infinity", text)

    @st.composite
    def huge_int(draw: st.DrawFn, self) -> Case:
        obj = draw(self.event_obj())
        digits = draw(st.integers(19, 4000))
        value = 10**digits + draw(st.integers(0, 10**6))
        obj["item"] = value if draw(st.booleans()) else -value
        return self.on("recs", "huge_int", draw(dumped(obj)), client_id=echoed_id(obj))

    @st.composite
    def deep(draw: st.DrawFn, self) -> Case:
        """Deep nesting: rejected, by the schema or by the parser's depth limit.

        The parser gives up at the interpreter's recursion limit (1000 in a
        server). Hypothesis raises that limit in its own process, so depths at
        and beyond it are only generated for a live server (``real_limit``);
        and only there can nesting inside an ignored field be fuzzed.
        """
        obj = draw(self.event_obj())
        wheres = ["item", "id", "extra", "top"]
        if self.real_limit:
            wheres += IGNORED
        where = draw(st.sampled_from(wheres))
        too_deep = where in IGNORED or (self.real_limit and draw(st.booleans()))
        depth = draw(
            st.integers(DEPTH_ALWAYS_TOO_DEEP, 2100)
            if too_deep
            else st.integers(2, 800)
        )
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        nested = opener * depth + ("1" if opener != "[" else "") + closer * depth
        if where == "top":
            return self.on("recs", "deep_nesting", nested)
        obj[where] = PAD
        text = draw(dumped(obj)).replace(json.dumps(PAD), nested, 1)
        readable = not too_deep and where != "id"
        return self.on(
            "recs", "deep_nesting", text, client_id=echoed_id(obj) if readable else None
        )

    @st.composite
    def oversize(draw: st.DrawFn, self) -> Case:
        """A well-formed event padded past the limit (or exactly to it)."""
        obj = draw(self.event_obj(known=True))
        obj["group"] = PAD
        text = draw(dumped(obj))
        room = self.max_bytes - len(text.encode("utf-8")) + len(PAD)
        if draw(st.integers(0, 4)) == 0:  # exactly at the limit: still served
            return self.on(
                "recs",
                "at_limit",
                text.replace(PAD, "x" * room, 1),
                expect="event",
                client_id=obj["id"],
                known=True,
            )
        char = draw(st.sampled_from(["x", "é", "€", "😀"]))
        over = draw(st.integers(1, 2 * self.max_bytes))
        count = (room + over) // len(char.encode("utf-8")) + 1
        return self.on("recs", "oversize", text.replace(PAD, char * count, 1))

    @st.composite
    def bad_json(draw: st.DrawFn, self) -> Case:
        source = draw(st.sampled_from(["truncated", "random", "special"]))
        if source == "truncated":
            text = draw(dumped(draw(self.event_obj())))
            text = text[: draw(st.integers(0, len(text) - 1))]
        elif source == "random":
            text = draw(st.text(max_size=60))
        else:
            text = draw(
                st.sampled_from(
                    [
                        "",
                        " ",
                        "{",
                        "}",
                        "{'type': 'event'}",
                        '{"type":"event",}',
                        "[1,]",
                        "undefined",
                        "True",
                        "\ufeff{}",
                        '{"type":"event" "id":"x"}',
                        '"\\x"',
                        "nul",
                        "01",
                        "{type:event}",
                        "\x00",
                    ]
                )
            )
        assume("NaN" not in text and "Infinity" not in text)
        try:
            json.loads(text)
        except json.JSONDecodeError:
            return self.on("recs", "bad_json", text, expect="bad_json")
        assume(False)
        raise AssertionError

    @st.composite
    def binary(draw: st.DrawFn, self) -> Case:
        source = draw(st.sampled_from(["random", "json", "huge"]))
        if source == "random":
            data = draw(st.binary(max_size=200))
        elif source == "json":
            data = draw(dumped(draw(self.event_obj()))).encode("utf-8")
        else:
            data = b"\x00" * (self.max_bytes + draw(st.integers(1, 2 * self.max_bytes)))
        return self.on("recs", "binary", data=data)

    def recs_frames(self) -> st.SearchStrategy[Case]:
        """Return every kind of frame for ``/ws/recommendations/``."""
        return st.one_of(
            self.valid(),
            self.unknown_item(),
            self.wrong_type(),
            self.wrong_type(),
            self.missing(),
            self.extra(),
            self.nan(),
            self.huge_int(),
            self.deep(),
            self.oversize(),
            self.bad_json(),
            self.binary(),
        )

    def hostile_frames(self) -> st.SearchStrategy[Case]:
        """Return every kind of frame whose answer does not depend on time."""
        return st.one_of(
            self.wrong_type(),
            self.missing(),
            self.extra(),
            self.nan(),
            self.huge_int(),
            self.deep(),
            self.oversize().filter(lambda c: c.expect != "event"),
            self.bad_json(),
            self.binary(),
        )

    # -- /ws/sync/ -----------------------------------------------------------------

    @st.composite
    def resume(draw: st.DrawFn, self) -> Case:
        obj: dict[str, Any] = {"type": "resume"}
        mode = draw(st.sampled_from(["now", "ahead", "wrong"]))
        if draw(st.booleans()):
            obj["id"] = draw(
                st.one_of(client_ids, st.integers(-(2**53) + 1, 2**53 - 1))
            )
        if mode == "now":
            obj["after"] = self.seq
            return self.on("sync", "resume", draw(dumped(obj)), expect="resumed")
        if mode == "ahead":
            obj["after"] = draw(st.integers(self.seq + 1, MAX_ITEM_ID))
            return self.on("sync", "resume", draw(dumped(obj)), expect="reset")
        obj["after"] = draw(
            st.one_of(
                st.integers(max_value=-1),
                st.integers(min_value=MAX_ITEM_ID + 1),
                st.text(max_size=8),
                st.floats(allow_nan=False, allow_infinity=False),
                st.booleans(),
                st.none(),
                st.lists(st.integers(), max_size=2),
            )
        )
        return self.on(
            "sync", "resume_wrong_type", draw(dumped(obj)), client_id=echoed_id(obj)
        )

    def sync_frames(self) -> st.SearchStrategy[Case]:
        """Return frames for ``/ws/sync/``: resumes and the time-independent hostile kinds."""

        def to_sync(case: Case) -> Case:
            # An event is not a sync message: its type is wrong there.
            if case.expect == "event":
                return Case(
                    case.kind,
                    "sync",
                    case.text,
                    case.data,
                    "bad_message",
                    echoed_id(json.loads(case.text)),
                )
            return Case(
                case.kind, "sync", case.text, case.data, case.expect, case.client_id
            )

        return st.one_of(
            self.resume(),
            self.resume(),
            self.valid().map(to_sync),
            st.one_of(
                self.nan(), self.deep(), self.oversize(), self.bad_json(), self.binary()
            ).map(to_sync),
        )
